"""Exam files: checked against the loaded banks, every problem reported, nothing half-loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.banks import load_bank, load_banks, write_synthetic_bank
from engine.exams import ExamSetup, load_exam, load_exams
from engine.exceptions import BankError, Problem
from engine.model import Admission, Bank, Recording
from engine.roster import generate_candidates, iin_is_valid

REPO = Path(__file__).resolve().parent.parent

EXAM = """\
[exam]
id = "kz-test"
title = { kk = "Тест", ru = "Тест" }
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
admission = "proctor"
identity_document = "iin"
recording = "optional"

[[parts]]
id = "law"
title = { kk = "Заң", ru = "Закон" }
bank = "kz-law"
minutes = 90
warnings_minutes = [5, 15]
shuffle_options = false
[parts.blueprint]
dimension = "act"
counts = { ethics = 4, procedure = 5, prosecutor = 6 }

[[sites]]
id = "astana"
title = { kk = "Астана", ru = "Астана" }

[[sites]]
id = "almaty"
title = { kk = "Алматы", ru = "Алматы" }

[candidates]
generate = 20
"""

CSV_HEADER = "id,full_name,site,office,document\n"
GOOD_ROWS = (
    "c-1,Ахметов Ерлан Болатович,astana,,900514300012\n"
    "c-2,Оспанова Дана Маратқызы,almaty,,851225400009\n"
)


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bank]:
    """Two small banks: kz-law (kk, ru; 10 items per act) and ua-apt (uk)."""
    root = tmp_path_factory.mktemp("banks")
    write_synthetic_bank(
        root / "kz-law",
        bank_id="kz-law",
        item_count=30,
        languages=["kk", "ru"],
        dimension="act",
        values=["ethics", "procedure", "prosecutor"],
    )
    write_synthetic_bank(
        root / "ua-apt",
        bank_id="ua-apt",
        item_count=20,
        languages=["uk"],
        dimension="category",
        values=["logical", "verbal"],
    )
    return load_banks(root)


def write(folder: Path, text: str, name: str = "exam.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def broken(*replacements: tuple[str, str]) -> str:
    """EXAM with each `old` (which must be there) replaced by `new`."""
    text = EXAM
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def problems_of(path: Path, banks: dict[str, Bank]) -> list[Problem]:
    with pytest.raises(BankError) as raised:
        load_exam(path, banks)
    return raised.value.problems


# --- a valid exam -------------------------------------------------------------------------------


def test_valid_exam_maps_every_field(tmp_path: Path, banks: dict[str, Bank]) -> None:
    setup = load_exam(write(tmp_path, EXAM), banks)
    exam = setup.exam
    assert exam.id == "kz-test"
    assert dict(exam.title) == {"kk": "Тест", "ru": "Тест"}
    assert exam.scheme == "kz-prosecutor"
    assert exam.languages == ("kk", "ru")
    assert exam.admission is Admission.PROCTOR
    assert exam.identity_document == "iin"
    assert exam.recording is Recording.OPTIONAL
    (part,) = exam.parts
    assert part.id == "law"
    assert part.bank_id == "kz-law"
    assert part.time_limit_s == 90 * 60
    assert part.warnings_s == (900, 300)  # sorted latest-first
    assert part.shuffle_options is False
    assert part.blueprint.dimension == "act"
    assert dict(part.blueprint.counts) == {"ethics": 4, "procedure": 5, "prosecutor": 6}
    assert part.blueprint.total == 15
    assert [(site.id, site.title["ru"]) for site in exam.sites] == [
        ("astana", "Астана"),
        ("almaty", "Алматы"),
    ]
    assert setup.candidates == generate_candidates(exam, 20)
    assert all(iin_is_valid(candidate.document) for candidate in setup.candidates)


def test_defaults(tmp_path: Path, banks: dict[str, Bank]) -> None:
    text = broken(
        ('admission = "proctor"\n', ""),
        ('identity_document = "iin"\n', ""),
        ('recording = "optional"\n', ""),
        ("warnings_minutes = [5, 15]\n", ""),
        ("shuffle_options = false\n", ""),
        ("[candidates]\ngenerate = 20\n", ""),
    )
    setup = load_exam(write(tmp_path, text), banks)
    assert setup.exam.admission is Admission.SELF
    assert setup.exam.identity_document == "passport"
    assert setup.exam.recording is Recording.REQUIRED, "audio-video fixation unless waived"
    assert setup.exam.parts[0].warnings_s == (900, 300, 60)
    assert setup.exam.parts[0].shuffle_options is True
    assert setup.candidates == ()


def test_default_warnings_a_short_part_cannot_have_are_dropped(
    tmp_path: Path, banks: dict[str, Bank]
) -> None:
    text = broken(("minutes = 90", "minutes = 10"), ("warnings_minutes = [5, 15]\n", ""))
    assert load_exam(write(tmp_path, text), banks).exam.parts[0].warnings_s == (300, 60)


def test_settings_pass_through(tmp_path: Path, banks: dict[str, Bank]) -> None:
    text = broken(('identity_document = "iin"', 'identity_document = "iin"\nsettings = { x = 1 }'))
    assert dict(load_exam(write(tmp_path, text), banks).exam.settings) == {"x": 1}


def test_two_parts_from_two_banks(tmp_path: Path, banks: dict[str, Bank]) -> None:
    text = """\
[exam]
id = "ua-test"
title = { uk = "Тест" }
scheme = "ua-prosecutor"
languages = ["uk"]

[[parts]]
id = "aptitude"
title = { uk = "Здібності" }
bank = "ua-apt"
minutes = 60
[parts.blueprint]
dimension = "category"
counts = { logical = 10, verbal = 10 }

[[parts]]
id = "again"
title = { uk = "Ще раз" }
bank = "ua-apt"
minutes = 30
[parts.blueprint]
dimension = "category"
counts = { verbal = 1 }

[[sites]]
id = "lviv"
title = { uk = "Львів" }
"""
    exam = load_exam(write(tmp_path, text), banks).exam
    assert [(part.id, part.blueprint.total) for part in exam.parts] == [
        ("aptitude", 20),
        ("again", 1),
    ]


# --- every rule, one broken file each -----------------------------------------------------------

EXAM_PROBLEMS = [
    # (replacements in EXAM, the reason reported)
    (
        (('scheme = "kz-prosecutor"', 'scheme = "kz-prosecutor"\nschema = "x"'),),
        "[exam]: unknown field 'schema'",
    ),
    ((('scheme = "kz-prosecutor"\n', ""),), "[exam]: missing field 'scheme'"),
    ((('[[sites]]\nid = "almaty"', '[[site]]\nid = "almaty"'),), "unknown field 'site'"),
    (
        (('id = "kz-test"', 'id = "kz test"'),),
        "[exam]: id 'kz test' may hold only letters, digits, '-' and '_'",
    ),
    (
        (('admission = "proctor"', 'admission = "auto"'),),
        "[exam]: admission 'auto' is not one of 'self', 'proctor'",
    ),
    (
        (('recording = "optional"', 'recording = "off"'),),
        "[exam]: recording 'off' is not one of 'required', 'optional'",
    ),
    (
        (('identity_document = "iin"', 'identity_document = "snils"'),),
        "[exam]: identity_document 'snils' is not one of 'iin', 'passport', 'service-id'",
    ),
    (
        (('title = { kk = "Тест", ru = "Тест" }', 'title = { kk = "Тест" }'),),
        "[exam]: title has no text in 'ru'",
    ),
    ((("minutes = 90", "minutes = 90\nminute = 5"),), "part 'law': unknown field 'minute'"),
    (
        (("minutes = 90\n", ""),),
        "part 'law': give the part's time as exactly one of 'minutes' or 'seconds'",
    ),
    (
        (("minutes = 90\n", "minutes = 90\nseconds = 30\n"),),
        "part 'law': give the part's time as exactly one of 'minutes' or 'seconds'",
    ),
    (
        (("minutes = 90\n", "seconds = 30\n"),),
        "part 'law': 'warnings_minutes' does not go with 'seconds'; use 'warnings_seconds'",
    ),
    (
        (
            ("minutes = 90\n", "seconds = 30\n"),
            ("warnings_minutes = [5, 15]\n", "warnings_seconds = [30]\n"),
        ),
        "part 'law': warnings_seconds: 30 is not shorter than the part's 30 seconds",
    ),
    ((("minutes = 90", "minutes = 0"),), "part 'law': minutes must be a positive integer, got 0"),
    (
        (('bank = "kz-law"', 'bank = "kz-laws"'),),
        "part 'law': bank 'kz-laws' is not loaded (loaded: 'kz-law', 'ua-apt')",
    ),
    (
        (
            ('languages = ["kk", "ru"]', 'languages = ["kk", "ru", "en"]'),
            (
                'title = { kk = "Тест", ru = "Тест" }',
                'title = { kk = "Тест", ru = "Тест", en = "Test" }',
            ),
            (
                'title = { kk = "Заң", ru = "Закон" }',
                'title = { kk = "Заң", ru = "Закон", en = "Law" }',
            ),
            (
                'title = { kk = "Астана", ru = "Астана" }',
                'title = { kk = "Астана", ru = "Астана", en = "Astana" }',
            ),
            (
                'title = { kk = "Алматы", ru = "Алматы" }',
                'title = { kk = "Алматы", ru = "Алматы", en = "Almaty" }',
            ),
        ),
        "part 'law': language 'en' is not in bank 'kz-law' (it has 'kk', 'ru')",
    ),
    (
        (('dimension = "act"', 'dimension = "acts"'),),
        "part 'law': blueprint: dimension 'acts' is not a dimension of bank 'kz-law' "
        "(it has 'act')",
    ),
    (
        (("ethics = 4", "ethics = 11"),),
        "part 'law': blueprint: asks for 11 items with act = 'ethics', bank 'kz-law' has 10",
    ),
    (
        (("ethics = 4", "ethic = 4"),),
        "part 'law': blueprint: 'ethic' is not a value of dimension 'act' in bank 'kz-law'",
    ),
    (
        (("ethics = 4", "ethics = 0"),),
        "part 'law': blueprint: count of 'ethics' must be a positive integer, got 0",
    ),
    ((('dimension = "act"\n', ""),), "part 'law': blueprint: missing field 'dimension'"),
    (
        (("warnings_minutes = [5, 15]", "warnings_minutes = [5, 90]"),),
        "part 'law': warnings_minutes: 90 is not shorter than the part's 90 minutes",
    ),
    (
        (("warnings_minutes = [5, 15]", "warnings_minutes = [5, 5]"),),
        "part 'law': warnings_minutes: 5 is listed twice",
    ),
    (
        (("shuffle_options = false", 'shuffle_options = "no"'),),
        "part 'law': shuffle_options must be true or false, got a string",
    ),
    ((('id = "almaty"', 'id = "astana"'),), "duplicate site id 'astana'"),
    ((('title = { kk = "Алматы", ru = "Алматы" }\n', ""),), "site 'almaty': missing field 'title'"),
    (
        (("generate = 20", "generate = 0"),),
        "[candidates]: generate must be an integer from 1 to 1000000, got 0",
    ),
    (
        (("generate = 20", 'generate = 20\nfile = "c.csv"'),),
        "[candidates]: give either file or generate, not both or neither",
    ),
    ((("generate = 20", "count = 20"),), "[candidates]: unknown field 'count'"),
]


@pytest.mark.parametrize(
    ("replacements", "reason"), EXAM_PROBLEMS, ids=[reason for _, reason in EXAM_PROBLEMS]
)
def test_exam_problems(
    tmp_path: Path,
    banks: dict[str, Bank],
    replacements: tuple[tuple[str, str], ...],
    reason: str,
) -> None:
    path = write(tmp_path, broken(*replacements))
    problems = problems_of(path, banks)
    assert reason in [problem.reason for problem in problems], problems
    assert all(problem.file == str(path) for problem in problems)


def test_missing_and_unknown_candidate_problems_are_the_only_ones(
    tmp_path: Path, banks: dict[str, Bank]
) -> None:
    """A broken [candidates] table alone fails the exam and says exactly why."""
    path = write(tmp_path, broken(("generate = 20", "count = 20")))
    assert problems_of(path, banks) == [
        Problem(str(path), None, "[candidates]: unknown field 'count'"),
        Problem(str(path), None, "[candidates]: give either file or generate, not both or neither"),
    ]


def test_duplicate_part_ids(tmp_path: Path, banks: dict[str, Bank]) -> None:
    part = EXAM[EXAM.index("[[parts]]") : EXAM.index("[[sites]]")]
    path = write(tmp_path, EXAM.replace(part, part + part))
    assert problems_of(path, banks) == [Problem(str(path), None, "duplicate part id 'law'")]


def test_every_problem_of_a_file_is_reported_at_once(
    tmp_path: Path, banks: dict[str, Bank]
) -> None:
    path = write(
        tmp_path,
        broken(
            ('scheme = "kz-prosecutor"', 'scheme = "kz-prosecutor"\nschema = "x"'),
            ("ethics = 4", "ethics = 11"),
            ('id = "almaty"', 'id = "astana"'),
            ("generate = 20", "generate = -5"),
        ),
    )
    assert [problem.reason for problem in problems_of(path, banks)] == [
        "[exam]: unknown field 'schema'",
        "part 'law': blueprint: asks for 11 items with act = 'ethics', bank 'kz-law' has 10",
        "duplicate site id 'astana'",
        "[candidates]: generate must be an integer from 1 to 1000000, got -5",
    ]


def test_malformed_toml(tmp_path: Path, banks: dict[str, Bank]) -> None:
    path = write(tmp_path, "[exam\n")
    (problem,) = problems_of(path, banks)
    assert problem.file == str(path)
    assert problem.reason.startswith("not valid TOML: ")


# --- candidates from a file ---------------------------------------------------------------------


def exam_with_file(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "people.csv").write_text(csv_text, encoding="utf-8")
    return write(tmp_path, broken(("generate = 20", 'file = "people.csv"')))


def test_candidates_from_csv(tmp_path: Path, banks: dict[str, Bank]) -> None:
    path = exam_with_file(tmp_path, "\ufeff" + CSV_HEADER + GOOD_ROWS + "\n")
    candidates = load_exam(path, banks).candidates
    assert [(c.id, c.exam_id, c.full_name, c.site_id, c.document) for c in candidates] == [
        ("c-1", "kz-test", "Ахметов Ерлан Болатович", "astana", "900514300012"),
        ("c-2", "kz-test", "Оспанова Дана Маратқызы", "almaty", "851225400009"),
    ]


def test_csv_columns_in_any_order(tmp_path: Path, banks: dict[str, Bank]) -> None:
    path = exam_with_file(
        tmp_path, "site,id,document,office,full_name\nalmaty,c-9,900514300012,Office 2,Name\n"
    )
    (candidate,) = load_exam(path, banks).candidates
    assert (candidate.id, candidate.site_id, candidate.office) == ("c-9", "almaty", "Office 2")


@pytest.mark.parametrize(
    ("rows", "item_id", "reason"),
    [
        ("c-3,Name,karaganda,,\n", "c-3", "line 4: unknown site 'karaganda'"),
        ("c-1,Name,astana,,\n", "c-1", "line 4: duplicate candidate id (first on line 2)"),
        ("c-3,,astana,,\n", "c-3", "line 4: full_name is empty"),
        (
            "c 3,Name,astana,,\n",
            "c 3",
            "line 4: candidate id 'c 3' may hold only letters, digits, '-' and '_'",
        ),
        (
            "c-3,Name,astana,,900514300013\n",
            "c-3",
            "line 4: IIN 900514300013: bad check digit 3, expected 2",
        ),
        ("c-3,Name,astana,\n", None, "line 4: has 4 fields, the header has 5"),
    ],
)
def test_candidate_file_problems(
    tmp_path: Path, banks: dict[str, Bank], rows: str, item_id: str | None, reason: str
) -> None:
    path = exam_with_file(tmp_path, CSV_HEADER + GOOD_ROWS + rows)
    assert problems_of(path, banks) == [Problem(str(tmp_path / "people.csv"), item_id, reason)]


def test_candidate_file_header_problems(tmp_path: Path, banks: dict[str, Bank]) -> None:
    path = exam_with_file(tmp_path, "id,name,site,office,document,email\n")
    csv_path = str(tmp_path / "people.csv")
    assert problems_of(path, banks) == [
        Problem(csv_path, None, "missing column 'full_name'"),
        Problem(csv_path, None, "unknown column 'name'"),
        Problem(csv_path, None, "unknown column 'email'"),
    ]


def test_missing_candidate_file(tmp_path: Path, banks: dict[str, Bank]) -> None:
    path = write(tmp_path, broken(("generate = 20", 'file = "nobody.csv"')))
    (problem,) = problems_of(path, banks)
    assert problem.file == str(tmp_path / "nobody.csv")
    assert problem.reason.startswith("cannot read the candidate file")


def test_candidate_file_is_checked_even_when_the_exam_is_broken(
    tmp_path: Path, banks: dict[str, Bank]
) -> None:
    (tmp_path / "people.csv").write_text(CSV_HEADER + "c-1,Name,nowhere,,\n", encoding="utf-8")
    path = write(
        tmp_path, broken(("generate = 20", 'file = "people.csv"'), ("ethics = 4", "ethics = 99"))
    )
    assert [(problem.file, problem.reason) for problem in problems_of(path, banks)] == [
        (
            str(path),
            "part 'law': blueprint: asks for 99 items with act = 'ethics', bank 'kz-law' has 10",
        ),
        (str(tmp_path / "people.csv"), "line 2: unknown site 'nowhere'"),
    ]


def test_generated_candidates_follow_the_seed(tmp_path: Path, banks: dict[str, Bank]) -> None:
    plain = load_exam(write(tmp_path, EXAM, "a.toml"), banks)
    seeded = load_exam(
        write(tmp_path, broken(("generate = 20", "generate = 20\nseed = 3")), "b.toml"), banks
    )
    assert [c.id for c in plain.candidates] == [c.id for c in seeded.candidates]
    assert [c.full_name for c in plain.candidates] != [c.full_name for c in seeded.candidates]


# --- a folder of exams --------------------------------------------------------------------------


def test_load_exams_by_id(tmp_path: Path, banks: dict[str, Bank]) -> None:
    write(tmp_path, EXAM, "one.toml")
    write(tmp_path, EXAM.replace('id = "kz-test"', 'id = "kz-other"'), "two.toml")
    (tmp_path / "notes.txt").write_text("not an exam", encoding="utf-8")
    setups = load_exams(tmp_path, banks)
    assert sorted(setups) == ["kz-other", "kz-test"]
    assert isinstance(setups["kz-other"], ExamSetup)


def test_load_exams_reports_an_id_clash_and_loads_nothing(
    tmp_path: Path, banks: dict[str, Bank]
) -> None:
    write(tmp_path, EXAM, "one.toml")
    write(tmp_path, EXAM, "two.toml")
    with pytest.raises(BankError) as raised:
        load_exams(tmp_path, banks)
    assert raised.value.problems == [
        Problem(
            str(tmp_path / "two.toml"),
            None,
            "exam id 'kz-test' is also the id of the exam in one.toml",
        )
    ]


def test_load_exams_loads_nothing_if_one_exam_is_broken(
    tmp_path: Path, banks: dict[str, Bank]
) -> None:
    write(tmp_path, EXAM, "good.toml")
    write(
        tmp_path, broken(("minutes = 90", "minutes = -1")).replace("kz-test", "kz-bad"), "bad.toml"
    )
    with pytest.raises(BankError) as raised:
        load_exams(tmp_path, banks)
    assert [problem.file for problem in raised.value.problems] == [str(tmp_path / "bad.toml")]


# --- the demo exams against the demo banks ------------------------------------------------------


def demo_banks() -> dict[str, Bank]:
    """The repository's banks, or a skip while their item files are still being written."""
    root = REPO / "banks"
    names = ("kz-legislation", "ua-professional", "ua-aptitude")
    if any(not list((root / name).glob("items*.toml")) for name in names):
        pytest.skip("the demo banks have no item files yet")
    return {name: load_bank(root / name) for name in names}


def test_kz_demo_exam_loads() -> None:
    setup = load_exam(REPO / "banks" / "exams" / "kz-demo.toml", demo_banks())
    exam = setup.exam
    assert (exam.id, exam.scheme, exam.languages) == ("kz-demo", "kz-prosecutor", ("kk", "ru"))
    assert exam.identity_document == "iin"
    (part,) = exam.parts
    assert (part.bank_id, part.time_limit_s, part.blueprint.total) == ("kz-legislation", 5400, 120)
    assert dict(part.blueprint.counts) == {
        "prosecutor-office": 30,
        "anti-corruption": 30,
        "ethics-code": 20,
        "constitution": 20,
        "criminal-procedure": 20,
    }
    assert len(exam.sites) == 7
    assert all(set(site.title) == {"kk", "ru"} for site in exam.sites)
    assert len(setup.candidates) == 3000
    assert all(iin_is_valid(candidate.document) for candidate in setup.candidates)


def test_ua_demo_exam_loads() -> None:
    setup = load_exam(REPO / "banks" / "exams" / "ua-demo.toml", demo_banks())
    exam = setup.exam
    assert (exam.id, exam.scheme, exam.languages) == ("ua-demo", "ua-prosecutor", ("uk",))
    assert exam.identity_document == "passport"
    assert [(p.id, p.bank_id, p.time_limit_s, p.blueprint.total) for p in exam.parts] == [
        ("professional", "ua-professional", 7200, 100),
        ("aptitude", "ua-aptitude", 3600, 90),
    ]
    assert [site.id for site in exam.sites] == ["kyiv", "dnipro", "lviv", "odesa", "kharkiv"]
    assert len(setup.candidates) == 3000
    assert all(candidate.office for candidate in setup.candidates)
