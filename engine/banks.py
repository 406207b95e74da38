"""Load and validate item banks (the format of docs/banks.md).

A bank is checked as a whole before any of it is used: every problem in every file is collected
and reported together with its file, item id and reason, so a reviewer fixes a bank in one pass
and a broken bank never half-loads. The small checking helpers at the top are shared with
`engine/exams.py`, which validates exam files the same way.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from engine.exceptions import BankError, Problem
from engine.model import Bank, Item, ItemText, LanguageCode, frozen_map

BANK_FILE = "bank.toml"
MIN_OPTIONS = 2
MAX_OPTIONS = 8
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""Ids of banks, items, tags, exams, parts and sites: letters, digits, '-' and '_'."""
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}")
"""An ISO 639 code in lower case: ``kk``, ``ru``, ``uk``."""

Report = Callable[[str], None]
"""Where a check sends the reason of a problem it finds; the caller knows file and item."""


class FileReport(Protocol):
    """Where the checks of one file send a reason, with the item id when one is known."""

    def __call__(self, reason: str, item_id: str | None = None) -> None: ...


# --- checking helpers (shared with engine/exams.py) ---------------------------------------------


def describe(value: object) -> str:
    """Name a TOML value's type the way a bank author would, for 'must be X, got Y' messages."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def read_toml(path: Path, report: Report) -> dict[str, object] | None:
    """Parse one TOML file; an unreadable or malformed file is a problem, not a crash."""
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as error:
        report(f"not valid TOML: {error}")
    except OSError as error:
        report(f"cannot read: {error.strerror or error}")
    return None


def check_fields(
    table: Mapping[str, object],
    report: Report,
    *,
    required: Collection[str],
    optional: Collection[str] = (),
) -> bool:
    """Report missing and unknown fields (so typos are caught); True if none is missing."""
    complete = True
    for name in required:
        if name not in table:
            report(f"missing field '{name}'")
            complete = False
    for name in table:
        if name not in required and name not in optional:
            report(f"unknown field '{name}'")
    return complete


def check_id(value: object, what: str, report: Report) -> str | None:
    """An id as `ID_PATTERN` allows it, or None after reporting why it is not one."""
    if not isinstance(value, str):
        report(f"{what} must be a string, got {describe(value)}")
        return None
    if not ID_PATTERN.fullmatch(value):
        report(f"{what} '{value}' may hold only letters, digits, '-' and '_'")
        return None
    return value


def check_text(value: object, what: str, report: Report) -> str | None:
    """A non-empty string (blank counts as empty), or None after reporting."""
    if not isinstance(value, str):
        report(f"{what} must be a string, got {describe(value)}")
        return None
    if not value.strip():
        report(f"{what} is empty")
        return None
    return value


def check_languages(value: object, report: Report) -> tuple[LanguageCode, ...] | None:
    """A non-empty list of distinct language codes, or None after reporting."""
    if not isinstance(value, list) or not value:
        report(f"languages must be a non-empty list of language codes, got {describe(value)}")
        return None
    languages: list[str] = []
    for code in value:
        if not isinstance(code, str) or not LANGUAGE_PATTERN.fullmatch(code):
            report(f"language {code!r} is not a lower-case ISO 639 code such as 'kk'")
        elif code in languages:
            report(f"language '{code}' is listed twice")
        else:
            languages.append(code)
    return tuple(languages) if len(languages) == len(value) else None


def check_localized(
    value: object, what: str, languages: Sequence[LanguageCode] | None, report: Report
) -> dict[LanguageCode, str] | None:
    """A text in exactly the given languages (any languages when they are not known)."""
    if not isinstance(value, dict):
        report(f"{what} must be a table of texts by language, got {describe(value)}")
        return None
    texts: dict[LanguageCode, str] = {}
    complete = True
    for language, text in value.items():
        if languages is not None and language not in languages:
            report(f"{what} has a text in '{language}', which is not one of {_listing(languages)}")
            complete = False
        checked = check_text(text, f"{what} in '{language}'", report)
        if checked is None:
            complete = False
        else:
            texts[language] = checked
    for language in languages or ():
        if language not in value:
            report(f"{what} has no text in '{language}'")
            complete = False
    return texts if complete else None


def _listing(names: Collection[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


# --- one bank ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    """The `[bank]` table of bank.toml, checked."""

    id: str
    version: str
    languages: tuple[LanguageCode, ...]
    title: dict[LanguageCode, str]
    tags: dict[str, dict[str, dict[LanguageCode, str]]]


_HEADER_REQUIRED = ("id", "version", "languages", "title")
_HEADER_OPTIONAL = ("tags",)
_ITEM_REQUIRED = ("id", "key", "text")
_ITEM_OPTIONAL = ("tags",)
_TEXT_FIELDS = ("stem", "options")


def validate_bank(path: Path) -> list[Problem]:
    """Every problem of the bank in folder `path`; an empty list means it loads."""
    return _read_bank(path)[1]


def load_bank(path: Path) -> Bank:
    """The bank in folder `path`, or `BankError` listing every problem (nothing half-loads)."""
    bank, problems = _read_bank(path)
    if problems or bank is None:
        raise BankError(problems)
    return bank


def load_banks(root: Path) -> dict[str, Bank]:
    """Every bank in a sub-folder of `root` that has a bank.toml, by bank id.

    All banks are checked before any is returned; two folders declaring the same bank id is a
    problem too, since parts find their bank by id.
    """
    problems: list[Problem] = []
    if not root.is_dir():
        raise BankError([Problem(str(root), None, "not a folder")])
    banks: dict[str, Bank] = {}
    first_folder: dict[str, Path] = {}
    for folder in sorted(child for child in root.iterdir() if (child / BANK_FILE).is_file()):
        bank, found = _read_bank(folder)
        problems.extend(found)
        if bank is None:
            continue
        if bank.id in first_folder:
            problems.append(
                Problem(
                    str(folder / BANK_FILE),
                    None,
                    f"bank id '{bank.id}' is also the id of the bank in {first_folder[bank.id]}",
                )
            )
            continue
        first_folder[bank.id] = folder
        banks[bank.id] = bank
    if problems:
        raise BankError(problems)
    return banks


def _read_bank(folder: Path) -> tuple[Bank | None, list[Problem]]:
    """Check every file of a bank; the bank is built only when nothing is wrong."""
    problems: list[Problem] = []
    header_path = folder / BANK_FILE
    if not header_path.is_file():
        return None, [Problem(str(folder), None, f"no {BANK_FILE} in this folder")]
    files = sorted(
        path for path in folder.glob("*.toml") if path.is_file() and not path.name.startswith(".")
    )
    # bank.toml first so its header is known when the item files are checked.
    files.sort(key=lambda path: path.name != BANK_FILE)
    header: _Header | None = None
    header_broken = False
    items: list[Item] = []
    first_file: dict[str, str] = {}
    for path in files:

        def report(reason: str, item_id: str | None = None, file: str = str(path)) -> None:
            problems.append(Problem(file, item_id, reason))

        document = read_toml(path, report)
        if document is None:
            header_broken = header_broken or path == header_path
            continue
        allowed = ("bank", "items") if path == header_path else ("items",)
        for name in document:
            if name == "bank" and path != header_path:
                report(f"[bank] belongs in {BANK_FILE} only")
            elif name not in allowed:
                report(f"unknown field '{name}'")
        if path == header_path:
            header = _read_header(document.get("bank"), report)
            header_broken = header is None
        raw_items = document.get("items", [])
        if not isinstance(raw_items, list):
            report(f"items must be an array of tables ([[items]]), got {describe(raw_items)}")
            continue
        for position, raw in enumerate(raw_items, start=1):
            item = _read_item(raw, position, header, report)
            item_id = raw.get("id") if isinstance(raw, dict) else None
            if isinstance(item_id, str):
                if item_id in first_file:
                    report(f"duplicate item id (first in {first_file[item_id]})", item_id)
                    continue
                first_file[item_id] = path.name
            if item is not None:
                items.append(item)
    if problems or header is None or header_broken:
        return None, problems
    bank = Bank(
        id=header.id,
        version=header.version,
        languages=header.languages,
        title=frozen_map(header.title),
        tags=frozen_map(
            {
                dimension: frozen_map({value: frozen_map(title) for value, title in values.items()})
                for dimension, values in header.tags.items()
            }
        ),
        items=tuple(items),
    )
    return bank, []


def _read_header(raw: object, report: Report) -> _Header | None:
    """The `[bank]` table, or None after reporting what is wrong with it."""
    if raw is None:
        report("missing table [bank]")
        return None
    if not isinstance(raw, dict):
        report(f"[bank] must be a table, got {describe(raw)}")
        return None

    def in_bank(reason: str) -> None:
        report(f"[bank]: {reason}")

    complete = check_fields(raw, in_bank, required=_HEADER_REQUIRED, optional=_HEADER_OPTIONAL)
    bank_id = check_id(raw["id"], "id", in_bank) if "id" in raw else None
    version = check_text(raw["version"], "version", in_bank) if "version" in raw else None
    languages = check_languages(raw["languages"], in_bank) if "languages" in raw else None
    title = check_localized(raw["title"], "title", languages, in_bank) if "title" in raw else None
    tags = _read_tag_declarations(raw.get("tags", {}), languages, in_bank)
    if not complete or None in (bank_id, version, languages, title, tags):
        return None
    assert bank_id and version and languages and title is not None and tags is not None
    return _Header(bank_id, version, languages, title, tags)


def _read_tag_declarations(
    raw: object, languages: Sequence[LanguageCode] | None, report: Report
) -> dict[str, dict[str, dict[LanguageCode, str]]] | None:
    """`[bank.tags.<dimension>]` tables: each value of a dimension with its title."""
    if not isinstance(raw, dict):
        report(f"tags must be a table of dimensions, got {describe(raw)}")
        return None
    tags: dict[str, dict[str, dict[LanguageCode, str]]] = {}
    complete = True
    for dimension, values in raw.items():
        if check_id(dimension, "tag dimension", report) is None:
            complete = False
            continue
        if not isinstance(values, dict) or not values:
            report(f"tag dimension '{dimension}' must be a table of at least one value")
            complete = False
            continue
        declared: dict[str, dict[LanguageCode, str]] = {}
        for value, title in values.items():
            checked_value = check_id(value, f"tag value of '{dimension}'", report)
            where = f"title of tag {dimension} = '{value}'"
            checked_title = check_localized(title, where, languages, report)
            if checked_value is None or checked_title is None:
                complete = False
            else:
                declared[checked_value] = checked_title
        tags[dimension] = declared
    return tags if complete else None


def _read_item(
    raw: object, position: int, header: _Header | None, file_report: FileReport
) -> Item | None:
    """One `[[items]]` table, or None after reporting every problem it has.

    Language and tag rules need the header; when bank.toml is itself broken the item's own
    structure is still checked so the author sees those problems in the same run.
    """
    if not isinstance(raw, dict):
        file_report(f"item #{position} in this file must be a table, got {describe(raw)}")
        return None
    raw_id = raw.get("id")
    item_id = raw_id if isinstance(raw_id, str) and raw_id else None

    def report(reason: str) -> None:
        if item_id is None:
            file_report(f"item #{position} in this file: {reason}")
        else:
            file_report(reason, item_id)

    complete = check_fields(raw, report, required=_ITEM_REQUIRED, optional=_ITEM_OPTIONAL)
    if "id" in raw and check_id(raw["id"], "id", report) is None:
        complete = False
    languages = header.languages if header else None
    texts = _read_texts(raw["text"], languages, report) if "text" in raw else None
    option_count = _agreed_option_count(texts, languages, report) if texts else None
    key = _read_key(raw["key"], option_count, report) if "key" in raw else None
    tags = _read_item_tags(raw.get("tags", {}), header, report)
    if not complete or texts is None or option_count is None or key is None or tags is None:
        return None
    if header is None or item_id is None:
        return None
    return Item(
        id=item_id,
        key=key - 1,
        tags=frozen_map(tags),
        texts=frozen_map({language: texts[language] for language in header.languages}),
    )


def _read_texts(
    raw: object, languages: Sequence[LanguageCode] | None, report: Report
) -> dict[LanguageCode, ItemText] | None:
    """`[items.text.<language>]` tables: a stem and 2 to 8 distinct non-empty options each."""
    if not isinstance(raw, dict):
        report(f"text must be a table of languages, got {describe(raw)}")
        return None
    texts: dict[LanguageCode, ItemText] = {}
    complete = True
    for language in languages or ():
        if language not in raw:
            report(f"no text in '{language}'")
            complete = False
    for language, text in raw.items():
        if languages is not None and language not in languages:
            report(f"text in '{language}', which is not a bank language ({_listing(languages)})")
            complete = False
            continue
        checked = _read_text(text, language, report)
        if checked is None:
            complete = False
        else:
            texts[language] = checked
    return texts if complete else None


def _read_text(raw: object, language: str, report: Report) -> ItemText | None:
    """One language's stem and options."""
    if not isinstance(raw, dict):
        report(f"text in '{language}' must be a table with stem and options, got {describe(raw)}")
        return None

    def in_language(reason: str) -> None:
        report(f"text in '{language}': {reason}")

    if not check_fields(raw, in_language, required=_TEXT_FIELDS):
        return None
    stem = check_text(raw["stem"], f"stem in '{language}'", report)
    options = raw["options"]
    if not isinstance(options, list):
        report(f"options in '{language}' must be a list, got {describe(options)}")
        return None
    complete = stem is not None
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        report(f"'{language}' has {len(options)} options; allowed {MIN_OPTIONS} to {MAX_OPTIONS}")
        complete = False
    seen: dict[str, int] = {}
    for number, option in enumerate(options, start=1):
        if check_text(option, f"option {number} in '{language}'", report) is None:
            complete = False
            continue
        assert isinstance(option, str)
        normalized = " ".join(option.split()).casefold()
        if normalized in seen:
            report(f"options {seen[normalized]} and {number} in '{language}' are the same")
            complete = False
        else:
            seen[normalized] = number
    if not complete or stem is None:
        return None
    return ItemText(stem, tuple(str(option) for option in options))


def _agreed_option_count(
    texts: Mapping[LanguageCode, ItemText],
    languages: Sequence[LanguageCode] | None,
    report: Report,
) -> int | None:
    """The option count all languages share (the first bank language is the reference)."""
    order = [language for language in (languages or texts) if language in texts]
    reference = order[0]
    expected = len(texts[reference].options)
    agreed = True
    for language in order[1:]:
        count = len(texts[language].options)
        if count != expected:
            report(f"'{language}' has {count} options, '{reference}' has {expected}")
            agreed = False
    return expected if agreed else None


def _read_key(raw: object, option_count: int | None, report: Report) -> int | None:
    """The 1-based key as written; the caller makes it 0-based."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        report(f"key must be an integer counted from 1, got {describe(raw)}")
        return None
    if option_count is not None and not 1 <= raw <= option_count:
        report(f"key {raw} is out of range 1..{option_count}")
        return None
    if option_count is None and raw < 1:
        report(f"key {raw} is out of range (options are counted from 1)")
        return None
    return raw


def _read_item_tags(raw: object, header: _Header | None, report: Report) -> dict[str, str] | None:
    """Exactly one declared value for every dimension the bank declares."""
    if not isinstance(raw, dict):
        report(f'tags must be a table like {{ act = "..." }}, got {describe(raw)}')
        return None
    tags: dict[str, str] = {}
    complete = True
    for dimension, value in raw.items():
        if not isinstance(value, str):
            report(f"tag {dimension} must be one value (a string), got {describe(value)}")
            complete = False
        elif header is not None and dimension not in header.tags:
            report(f"tag dimension '{dimension}' is not declared")
            complete = False
        elif header is not None and value not in header.tags[dimension]:
            report(f"tag {dimension} = '{value}' is not declared")
            complete = False
        else:
            tags[dimension] = value
    for dimension in header.tags if header else ():
        if dimension not in raw:
            report(f"no tag for dimension '{dimension}'")
            complete = False
    return tags if complete else None


# --- synthetic banks for load tests --------------------------------------------------------------

_ITEMS_PER_FILE = 1000


def write_synthetic_bank(
    folder: Path,
    *,
    bank_id: str,
    item_count: int,
    languages: Sequence[str],
    dimension: str,
    values: Sequence[str],
    options: int = 4,
    seed: int = 0,
) -> Path:
    """Write a valid bank of `item_count` generated items into `folder` and return `folder`.

    For load tests and benchmarks, where a bank must be large and its content does not matter.
    Items are tagged with `values` round-robin (so each value has about the same number of
    items), their keys are drawn from `seed`, and they are split over files of
    1,000 items to exercise multi-file banks.
    """
    if item_count < 1:
        raise ValueError("item_count must be at least 1")
    if not languages or not values:
        raise ValueError("a bank needs at least one language and one tag value")
    if not MIN_OPTIONS <= options <= MAX_OPTIONS:
        raise ValueError(f"options must be from {MIN_OPTIONS} to {MAX_OPTIONS}")
    for name in (bank_id, dimension, *values):
        if not ID_PATTERN.fullmatch(name):
            raise ValueError(f"{name!r} may hold only letters, digits, '-' and '_'")
    for language in languages:
        if not LANGUAGE_PATTERN.fullmatch(language):
            raise ValueError(f"{language!r} is not a lower-case ISO 639 code")
    folder.mkdir(parents=True, exist_ok=True)
    keys = np.random.default_rng(seed).integers(1, options + 1, size=item_count).tolist()
    width = max(5, len(str(item_count)))

    def localized(text: str) -> str:
        pairs = ", ".join(f"{language} = {_toml_string(text)}" for language in languages)
        return "{ " + pairs + " }"

    header = [
        "[bank]",
        f"id = {_toml_string(bank_id)}",
        'version = "synthetic"',
        f"languages = [{', '.join(_toml_string(language) for language in languages)}]",
        f"title = {localized(f'Synthetic bank {bank_id}')}",
        "",
        f"[bank.tags.{dimension}]",
        *(f"{value} = {localized(f'Synthetic {value}')}" for value in values),
        "",
    ]
    (folder / BANK_FILE).write_text("\n".join(header), encoding="utf-8")
    letters = "ABCDEFGH"
    for first in range(0, item_count, _ITEMS_PER_FILE):
        lines: list[str] = []
        for index in range(first, min(first + _ITEMS_PER_FILE, item_count)):
            number = index + 1
            value = values[index % len(values)]
            lines += [
                "[[items]]",
                f'id = "syn-{number:0{width}d}"',
                f'tags = {{ {dimension} = "{value}" }}',
                f"key = {keys[index]}",
            ]
            for language in languages:
                option_texts = (
                    _toml_string(f"Option {letters[option]} of item {number}")
                    for option in range(options)
                )
                lines += [
                    f"[items.text.{language}]",
                    f"stem = {_toml_string(f'Synthetic item {number} ({value}), {language}')}",
                    f"options = [{', '.join(option_texts)}]",
                ]
            lines.append("")
        file_number = first // _ITEMS_PER_FILE + 1
        (folder / f"items-{file_number:04d}.toml").write_text("\n".join(lines), encoding="utf-8")
    return folder


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are a subset of TOML's."""
    return json.dumps(text, ensure_ascii=False)
