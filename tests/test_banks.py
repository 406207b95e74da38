"""Bank loading: every rule of docs/banks.md is reported with file, item id and reason."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from engine.banks import load_bank, load_banks, validate_bank, write_synthetic_bank
from engine.exceptions import BankError, ConfigError, Problem
from engine.model import ItemText

HEADER = """\
[bank]
id = "demo-law"
version = "2026.1"
languages = ["kk", "ru"]
title = { kk = "Демо", ru = "Демо" }

[bank.tags.act]
prosecutor-office = { kk = "Прокуратура туралы", ru = "О прокуратуре" }
ethics-code = { kk = "Әдеп кодексі", ru = "Этический кодекс" }
"""

OPTIONS = {
    "kk": ["бір", "екі", "үш", "төрт"],
    "ru": ["один", "два", "три", "четыре"],
}


def item_toml(
    item_id: str | None = "po-001",
    *,
    tags: str = '{ act = "prosecutor-office" }',
    key: str = "2",
    options: dict[str, list[str]] | None = None,
    stems: dict[str, str] | None = None,
    extra: str = "",
) -> str:
    """One [[items]] table; every argument can be broken on purpose."""
    lines = ["[[items]]"]
    if item_id is not None:
        lines.append(f"id = {json.dumps(item_id)}")
    if tags:
        lines.append(f"tags = {tags}")
    if key:
        lines.append(f"key = {key}")
    if extra:
        lines.append(extra)
    for language, language_options in (options if options is not None else OPTIONS).items():
        stem = (stems or {}).get(language, f"Сұрақ {item_id} ({language})")
        lines += [
            f"[items.text.{language}]",
            f"stem = {json.dumps(stem, ensure_ascii=False)}",
            f"options = {json.dumps(language_options, ensure_ascii=False)}",
        ]
    return "\n".join(lines) + "\n"


def write_bank(folder: Path, header: str = HEADER, **files: str) -> Path:
    """A bank folder: bank.toml plus item files named by keyword (items_po → items-po.toml)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bank.toml").write_text(header, encoding="utf-8")
    for name, text in files.items():
        (folder / f"{name.replace('_', '-')}.toml").write_text(text, encoding="utf-8")
    return folder


def only_problem(folder: Path) -> Problem:
    problems = validate_bank(folder)
    assert len(problems) == 1, problems
    return problems[0]


# --- a valid bank -------------------------------------------------------------------------------


def test_valid_bank_loads_with_zero_based_keys_and_texts(tmp_path: Path) -> None:
    folder = write_bank(
        tmp_path / "demo",
        items_po=item_toml("po-001", key="2") + item_toml("po-002", key="4"),
        items_ethics=item_toml("ec-001", tags='{ act = "ethics-code" }', key="1"),
    )
    bank = load_bank(folder)
    assert bank.id == "demo-law"
    assert bank.version == "2026.1"
    assert bank.languages == ("kk", "ru")
    assert dict(bank.title) == {"kk": "Демо", "ru": "Демо"}
    assert set(bank.tags["act"]) == {"prosecutor-office", "ethics-code"}
    assert bank.tags["act"]["ethics-code"]["ru"] == "Этический кодекс"
    po = bank.by_id["po-001"]
    assert po.key == 1
    assert bank.by_id["po-002"].key == 3
    assert bank.by_id["ec-001"].key == 0
    assert dict(po.tags) == {"act": "prosecutor-office"}
    assert po.texts["ru"] == ItemText("Сұрақ po-001 (ru)", ("один", "два", "три", "четыре"))
    assert list(po.texts) == ["kk", "ru"]
    assert validate_bank(folder) == []


def test_items_are_read_bank_toml_first_then_files_in_name_order(tmp_path: Path) -> None:
    folder = write_bank(
        tmp_path / "demo",
        header=HEADER + item_toml("in-header"),
        items_b=item_toml("in-b"),
        items_a=item_toml("in-a"),
    )
    assert [item.id for item in load_bank(folder).items] == ["in-header", "in-a", "in-b"]


def test_bank_without_tags_is_allowed(tmp_path: Path) -> None:
    header = HEADER.split("[bank.tags.act]")[0]
    folder = write_bank(tmp_path / "demo", header=header, items=item_toml(tags=""))
    assert load_bank(folder).tags == {}


def test_hidden_files_and_other_extensions_are_ignored(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", items=item_toml())
    (folder / ".items.toml").write_text("this is not toml", encoding="utf-8")
    (folder / "notes.md").write_text("# notes", encoding="utf-8")
    assert [item.id for item in load_bank(folder).items] == ["po-001"]


# --- the header ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ('version = "2026.1"\n', "", "[bank]: missing field 'version'"),
        ('id = "demo-law"\n', "", "[bank]: missing field 'id'"),
        ('title = { kk = "Демо", ru = "Демо" }\n', "", "[bank]: missing field 'title'"),
        (
            'version = "2026.1"',
            'version = "2026.1"\nlanguage = "kk"',
            "[bank]: unknown field 'language'",
        ),
        (
            'id = "demo-law"',
            'id = "demo law"',
            "[bank]: id 'demo law' may hold only letters, digits, '-' and '_'",
        ),
        ('version = "2026.1"', 'version = " "', "[bank]: version is empty"),
        (
            'languages = ["kk", "ru"]',
            "languages = []",
            "[bank]: languages must be a non-empty list of language codes, got a list",
        ),
        (
            'languages = ["kk", "ru"]',
            'languages = ["kk", "ru", "kk"]',
            "[bank]: language 'kk' is listed twice",
        ),
        (
            'languages = ["kk", "ru"]',
            'languages = ["kk", "RU"]',
            "[bank]: language 'RU' is not a lower-case ISO 639 code such as 'kk'",
        ),
        (
            'title = { kk = "Демо", ru = "Демо" }',
            'title = { kk = "Демо" }',
            "[bank]: title has no text in 'ru'",
        ),
        (
            'title = { kk = "Демо", ru = "Демо" }',
            'title = { kk = "Демо", ru = "Демо", en = "Demo" }',
            "[bank]: title has a text in 'en', which is not one of 'kk', 'ru'",
        ),
        (
            'ethics-code = { kk = "Әдеп кодексі", ru = "Этический кодекс" }',
            'ethics-code = { kk = "Әдеп кодексі" }',
            "[bank]: title of tag act = 'ethics-code' has no text in 'ru'",
        ),
    ],
)
def test_header_problems(tmp_path: Path, old: str, new: str, reason: str) -> None:
    assert old in HEADER
    folder = write_bank(tmp_path / "demo", header=HEADER.replace(old, new), items=item_toml())
    assert only_problem(folder) == Problem(str(folder / "bank.toml"), None, reason)


def test_missing_bank_table(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", header="", items=item_toml())
    assert only_problem(folder) == Problem(str(folder / "bank.toml"), None, "missing table [bank]")


def test_missing_bank_toml(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    assert only_problem(tmp_path / "demo") == Problem(
        str(tmp_path / "demo"), None, "no bank.toml in this folder"
    )


def test_malformed_toml_names_the_file_and_still_checks_the_others(tmp_path: Path) -> None:
    folder = write_bank(
        tmp_path / "demo",
        items_a='[[items]]\nid = "x\n',
        items_b=item_toml("po-002", key="9"),
    )
    problems = validate_bank(folder)
    assert [(p.file, p.item_id) for p in problems] == [
        (str(folder / "items-a.toml"), None),
        (str(folder / "items-b.toml"), "po-002"),
    ]
    assert problems[0].reason.startswith("not valid TOML: ")
    assert problems[1].reason == "key 9 is out of range 1..4"


def test_bank_table_outside_bank_toml(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", items='[bank]\nid = "other"\n' + item_toml())
    assert only_problem(folder) == Problem(
        str(folder / "items.toml"), None, "[bank] belongs in bank.toml only"
    )


def test_unknown_top_level_field(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", items="[[item]]\nid = 'x'\n" + item_toml())
    assert only_problem(folder) == Problem(str(folder / "items.toml"), None, "unknown field 'item'")


# --- items --------------------------------------------------------------------------------------

BROKEN_ITEMS = [
    # (the item as written, the reason reported for it)
    (item_toml(extra="kye = 2", key=""), ["missing field 'key'", "unknown field 'kye'"]),
    (item_toml(extra='difficulty = "easy"'), ["unknown field 'difficulty'"]),
    (item_toml(options={"kk": OPTIONS["kk"]}), ["no text in 'ru'"]),
    (
        item_toml(options={**OPTIONS, "en": ["one", "two", "three", "four"]}),
        ["text in 'en', which is not a bank language ('kk', 'ru')"],
    ),
    (item_toml(stems={"kk": "  "}), ["stem in 'kk' is empty"]),
    (
        item_toml(options={**OPTIONS, "kk": ["бір", "екі", "", "төрт"]}),
        ["option 3 in 'kk' is empty"],
    ),
    (
        item_toml(options={"kk": ["бір"], "ru": ["один"]}, key="1"),
        ["'kk' has 1 options; allowed 2 to 8", "'ru' has 1 options; allowed 2 to 8"],
    ),
    (
        item_toml(options={"kk": [str(n) for n in range(9)], "ru": [str(n) for n in range(9)]}),
        ["'kk' has 9 options; allowed 2 to 8", "'ru' has 9 options; allowed 2 to 8"],
    ),
    (
        item_toml(options={**OPTIONS, "ru": ["один", "два", "три"]}),
        ["'ru' has 3 options, 'kk' has 4"],
    ),
    (
        item_toml(options={**OPTIONS, "ru": ["один", "два", " Один ", "четыре"]}),
        ["options 1 and 3 in 'ru' are the same"],
    ),
    (item_toml(key="5"), ["key 5 is out of range 1..4"]),
    (item_toml(key="0"), ["key 0 is out of range 1..4"]),
    (item_toml(key='"2"'), ["key must be an integer counted from 1, got a string"]),
    (item_toml(key="true"), ["key must be an integer counted from 1, got true/false"]),
    (item_toml(tags='{ act = "ethic" }'), ["tag act = 'ethic' is not declared"]),
    (item_toml(tags=""), ["no tag for dimension 'act'"]),
    (
        item_toml(tags='{ act = "ethics-code", topic = "x" }'),
        ["tag dimension 'topic' is not declared"],
    ),
    (
        item_toml(tags='{ act = ["ethics-code", "prosecutor-office"] }'),
        ["tag act must be one value (a string), got a list"],
    ),
    (item_toml("po 001"), ["id 'po 001' may hold only letters, digits, '-' and '_'"]),
]


@pytest.mark.parametrize(
    ("text", "reasons"), BROKEN_ITEMS, ids=[reasons[0] for _, reasons in BROKEN_ITEMS]
)
def test_item_problems_name_file_item_and_reason(
    tmp_path: Path, text: str, reasons: list[str]
) -> None:
    folder = write_bank(tmp_path / "demo", items_ok=item_toml("ok-001"), items_po=text)
    problems = validate_bank(folder)
    item_id = "po 001" if "po 001" in text else "po-001"
    assert sorted(problems, key=lambda p: p.reason) == sorted(
        (Problem(str(folder / "items-po.toml"), item_id, reason) for reason in reasons),
        key=lambda p: p.reason,
    )


def test_item_without_id_is_named_by_position(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", items=item_toml("po-001") + item_toml(None))
    assert only_problem(folder) == Problem(
        str(folder / "items.toml"), None, "item #2 in this file: missing field 'id'"
    )


def test_duplicate_item_id_across_files_names_the_first_file(tmp_path: Path) -> None:
    folder = write_bank(
        tmp_path / "demo", items_a=item_toml("po-001"), items_b=item_toml("po-001", key="3")
    )
    assert only_problem(folder) == Problem(
        str(folder / "items-b.toml"), "po-001", "duplicate item id (first in items-a.toml)"
    )


def test_duplicate_item_id_within_one_file(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", items_a=item_toml("po-001") + item_toml("po-001"))
    assert only_problem(folder) == Problem(
        str(folder / "items-a.toml"), "po-001", "duplicate item id (first in items-a.toml)"
    )


def test_items_not_an_array_of_tables(tmp_path: Path) -> None:
    folder = write_bank(tmp_path / "demo", items='items = "none"\n')
    assert only_problem(folder) == Problem(
        str(folder / "items.toml"),
        None,
        "items must be an array of tables ([[items]]), got a string",
    )


def test_item_checks_still_run_when_the_header_is_broken(tmp_path: Path) -> None:
    folder = write_bank(
        tmp_path / "demo",
        header=HEADER.replace('version = "2026.1"\n', ""),
        items=item_toml(key="7"),
    )
    assert validate_bank(folder) == [
        Problem(str(folder / "bank.toml"), None, "[bank]: missing field 'version'"),
        Problem(str(folder / "items.toml"), "po-001", "key 7 is out of range 1..4"),
    ]


# --- all problems at once, nothing half-loads --------------------------------------------------


def test_every_problem_of_every_file_is_reported_and_nothing_loads(tmp_path: Path) -> None:
    folder = write_bank(
        tmp_path / "demo",
        items_a=item_toml("po-001") + item_toml("po-002", key="5"),
        items_b=item_toml("ec-001", tags='{ act = "ethic" }') + item_toml("po-001"),
        items_c=item_toml("ok-001"),
    )
    with pytest.raises(BankError) as raised:
        load_bank(folder)
    expected = [
        Problem(str(folder / "items-a.toml"), "po-002", "key 5 is out of range 1..4"),
        Problem(str(folder / "items-b.toml"), "ec-001", "tag act = 'ethic' is not declared"),
        Problem(
            str(folder / "items-b.toml"), "po-001", "duplicate item id (first in items-a.toml)"
        ),
    ]
    assert raised.value.problems == expected
    assert validate_bank(folder) == expected
    assert isinstance(raised.value, ConfigError)
    message = str(raised.value)
    assert "3 problem(s)" in message
    assert f"{folder / 'items-a.toml'}: item po-002: key 5 is out of range 1..4" in message


# --- many banks ---------------------------------------------------------------------------------


def test_load_banks_reads_every_bank_folder_by_id(tmp_path: Path) -> None:
    write_bank(tmp_path / "one", items=item_toml())
    write_bank(
        tmp_path / "two", header=HEADER.replace('"demo-law"', '"other-law"'), items=item_toml()
    )
    (tmp_path / "exams").mkdir()
    (tmp_path / "exams" / "x.toml").write_text("not a bank", encoding="utf-8")
    banks = load_banks(tmp_path)
    assert sorted(banks) == ["demo-law", "other-law"]
    assert banks["other-law"].by_id["po-001"].key == 1


def test_load_banks_reports_an_id_clash(tmp_path: Path) -> None:
    write_bank(tmp_path / "one", items=item_toml())
    write_bank(tmp_path / "two", items=item_toml())
    with pytest.raises(BankError) as raised:
        load_banks(tmp_path)
    assert raised.value.problems == [
        Problem(
            str(tmp_path / "two" / "bank.toml"),
            None,
            f"bank id 'demo-law' is also the id of the bank in {tmp_path / 'one'}",
        )
    ]


def test_load_banks_loads_nothing_if_one_bank_is_broken(tmp_path: Path) -> None:
    write_bank(tmp_path / "good", items=item_toml())
    broken = write_bank(
        tmp_path / "broken",
        header=HEADER.replace('"demo-law"', '"broken-law"'),
        items=item_toml(key="8"),
    )
    with pytest.raises(BankError) as raised:
        load_banks(tmp_path)
    assert raised.value.problems == [
        Problem(str(broken / "items.toml"), "po-001", "key 8 is out of range 1..4")
    ]


def test_load_banks_of_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(BankError) as raised:
        load_banks(tmp_path / "nowhere")
    assert raised.value.problems == [Problem(str(tmp_path / "nowhere"), None, "not a folder")]


# --- synthetic banks ----------------------------------------------------------------------------


def test_synthetic_bank_round_trip(tmp_path: Path) -> None:
    folder = write_synthetic_bank(
        tmp_path / "big",
        bank_id="big-law",
        item_count=2503,
        languages=["kk", "ru"],
        dimension="act",
        values=["a", "b", "c"],
        options=5,
        seed=7,
    )
    assert folder == tmp_path / "big"
    assert sorted(path.name for path in folder.glob("*.toml")) == [
        "bank.toml",
        "items-0001.toml",
        "items-0002.toml",
        "items-0003.toml",
    ]
    bank = load_bank(folder)
    assert bank.id == "big-law"
    assert bank.languages == ("kk", "ru")
    assert len(bank.items) == len(bank.by_id) == 2503
    assert Counter(item.tags["act"] for item in bank.items) == {"a": 835, "b": 834, "c": 834}
    assert {item.option_count for item in bank.items} == {5}
    assert Counter(item.key for item in bank.items).keys() == {0, 1, 2, 3, 4}
    seventeen = bank.by_id["syn-00017"]
    assert seventeen.texts["ru"].stem == "Synthetic item 17 (b), ru"


def test_synthetic_bank_is_deterministic_in_its_seed(tmp_path: Path) -> None:
    def keys(folder: str, seed: int) -> list[int]:
        path = write_synthetic_bank(
            tmp_path / folder,
            bank_id="syn",
            item_count=200,
            languages=["uk"],
            dimension="topic",
            values=["x", "y"],
            seed=seed,
        )
        return [item.key for item in load_bank(path).items]

    assert keys("a", 1) == keys("b", 1)
    assert keys("a", 1) != keys("c", 2)


@pytest.mark.parametrize(
    "change",
    [
        {"item_count": 0},
        {"options": 1},
        {"options": 9},
        {"values": []},
        {"languages": []},
        {"languages": ["Kazakh"]},
        {"bank_id": "bad id"},
        {"values": ["ok", "not ok"]},
    ],
)
def test_synthetic_bank_refuses_arguments_that_cannot_make_a_valid_bank(
    tmp_path: Path, change: dict[str, object]
) -> None:
    arguments: dict[str, object] = {
        "bank_id": "syn",
        "item_count": 10,
        "languages": ["kk"],
        "dimension": "act",
        "values": ["a"],
        **change,
    }
    with pytest.raises(ValueError):
        write_synthetic_bank(tmp_path / "syn", **arguments)  # type: ignore[arg-type]
