"""Load and validate exam files (the format of docs/banks.md) against the loaded banks.

As with banks, the whole file is checked before anything is built and every problem is reported
at once: a blueprint asking for more items than the bank has is found here, at load time, not at
the first sitting.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.banks import (
    FileReport,
    Report,
    check_fields,
    check_id,
    check_languages,
    check_localized,
    check_text,
    describe,
    read_toml,
)
from engine.exceptions import BankError, Problem
from engine.model import (
    Admission,
    Bank,
    Blueprint,
    Candidate,
    Exam,
    LanguageCode,
    Part,
    Recording,
    Role,
    Site,
    Staff,
    frozen_map,
)
from engine.roster import generate_candidates, iin_problem

IDENTITY_DOCUMENTS = ("iin", "passport", "service-id")
DEFAULT_WARNINGS_MINUTES = (15, 5, 1)
MAX_GENERATED_CANDIDATES = 1_000_000
CANDIDATE_COLUMNS = ("id", "full_name", "site", "office", "document")

_TOP_REQUIRED = ("exam", "parts", "sites")
_TOP_OPTIONAL = ("candidates", "staff")
_EXAM_REQUIRED = ("id", "title", "scheme", "languages")
_EXAM_OPTIONAL = ("admission", "identity_document", "recording", "settings")
_PART_REQUIRED = ("id", "title", "bank", "blueprint")
_PART_OPTIONAL = ("minutes", "seconds", "warnings_minutes", "warnings_seconds", "shuffle_options")
"""A part's time is `minutes` or, for drills and tests of the engine itself, `seconds`."""
_BLUEPRINT_FIELDS = ("dimension", "counts")
_SITE_FIELDS = ("id", "title")
_STAFF_REQUIRED = ("login", "name", "role")
_STAFF_OPTIONAL = ("sites",)


@dataclass(frozen=True, slots=True)
class ExamSetup:
    """An exam and the candidates registered for it, as one exam file describes them."""

    exam: Exam
    candidates: tuple[Candidate, ...]
    staff: tuple[Staff, ...] = ()


def load_exam(path: Path, banks: Mapping[str, Bank]) -> ExamSetup:
    """The exam in file `path`, or `BankError` listing every problem (nothing half-loads)."""
    setup, problems = _read_exam(path, banks)
    if problems or setup is None:
        raise BankError(problems)
    return setup


def load_exams(folder: Path, banks: Mapping[str, Bank]) -> dict[str, ExamSetup]:
    """Every exam file (``*.toml``) in `folder`, by exam id; all are checked before any is used."""
    if not folder.is_dir():
        raise BankError([Problem(str(folder), None, "not a folder")])
    problems: list[Problem] = []
    setups: dict[str, ExamSetup] = {}
    first_file: dict[str, Path] = {}
    for path in sorted(folder.glob("*.toml")):
        if path.name.startswith(".") or not path.is_file():
            continue
        setup, found = _read_exam(path, banks)
        problems.extend(found)
        if setup is None:
            continue
        exam_id = setup.exam.id
        if exam_id in first_file:
            reason = f"exam id '{exam_id}' is also the id of the exam in {first_file[exam_id].name}"
            problems.append(Problem(str(path), None, reason))
            continue
        first_file[exam_id] = path
        setups[exam_id] = setup
    if problems:
        raise BankError(problems)
    return setups


def _read_exam(path: Path, banks: Mapping[str, Bank]) -> tuple[ExamSetup | None, list[Problem]]:
    """Check an exam file and its candidates; build them only when nothing is wrong."""
    problems: list[Problem] = []

    def report(reason: str) -> None:
        problems.append(Problem(str(path), None, reason))

    document = read_toml(path, report)
    if document is None:
        return None, problems
    complete = check_fields(document, report, required=_TOP_REQUIRED, optional=_TOP_OPTIONAL)
    header = _read_header(document.get("exam"), report) if "exam" in document else None
    languages = header.languages if header else None
    parts = (
        _read_parts(document.get("parts"), languages, banks, report)
        if "parts" in document
        else None
    )
    sites = _read_sites(document.get("sites"), languages, report) if "sites" in document else None
    exam: Exam | None = None
    if complete and header is not None and parts is not None and sites is not None:
        exam = Exam(
            id=header.id,
            title=frozen_map(header.title),
            scheme=header.scheme,
            languages=header.languages,
            parts=parts,
            sites=sites,
            admission=header.admission,
            identity_document=header.identity_document,
            settings=frozen_map(header.settings),
            recording=header.recording,
        )
    candidates: tuple[Candidate, ...] | None = ()
    if "candidates" in document:
        candidates = _read_candidates(
            document["candidates"],
            path,
            exam,
            header,
            {site.id for site in sites} if sites is not None else None,
            report,
            problems,
        )
    staff: tuple[Staff, ...] | None = ()
    if "staff" in document:
        staff = _read_staff(document["staff"], exam, report)
    if problems or exam is None or candidates is None or staff is None:
        return None, problems
    return ExamSetup(exam, candidates, staff), []


# --- [exam] --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Header:
    """The `[exam]` table, checked."""

    id: str
    title: dict[LanguageCode, str]
    scheme: str
    languages: tuple[LanguageCode, ...]
    admission: Admission
    identity_document: str
    settings: dict[str, object]
    recording: Recording


def _read_header(raw: object, file_report: Report) -> _Header | None:
    """The `[exam]` table, or None after reporting what is wrong with it."""
    if not isinstance(raw, dict):
        file_report(f"[exam] must be a table, got {describe(raw)}")
        return None

    def report(reason: str) -> None:
        file_report(f"[exam]: {reason}")

    complete = check_fields(raw, report, required=_EXAM_REQUIRED, optional=_EXAM_OPTIONAL)
    exam_id = check_id(raw["id"], "id", report) if "id" in raw else None
    scheme = check_id(raw["scheme"], "scheme", report) if "scheme" in raw else None
    languages = check_languages(raw["languages"], report) if "languages" in raw else None
    title = check_localized(raw["title"], "title", languages, report) if "title" in raw else None
    admission = _read_choice(
        raw.get("admission", Admission.SELF.value),
        "admission",
        tuple(choice.value for choice in Admission),
        report,
    )
    identity_document = _read_choice(
        raw.get("identity_document", "passport"), "identity_document", IDENTITY_DOCUMENTS, report
    )
    recording = _read_choice(
        raw.get("recording", Recording.REQUIRED.value),
        "recording",
        tuple(choice.value for choice in Recording),
        report,
    )
    settings = raw.get("settings", {})
    if not isinstance(settings, dict):
        report(f"settings must be a table, got {describe(settings)}")
        complete = False
    if (
        not complete
        or exam_id is None
        or scheme is None
        or languages is None
        or title is None
        or admission is None
        or identity_document is None
        or recording is None
    ):
        return None
    assert isinstance(settings, dict)
    return _Header(
        exam_id,
        title,
        scheme,
        languages,
        Admission(admission),
        identity_document,
        settings,
        Recording(recording),
    )


def _read_choice(value: object, what: str, choices: Sequence[str], report: Report) -> str | None:
    """One of a fixed set of strings, or None after reporting the allowed ones."""
    if value not in choices:
        allowed = ", ".join(f"'{choice}'" for choice in choices)
        report(f"{what} {value!r} is not one of {allowed}")
        return None
    assert isinstance(value, str)
    return value


# --- [[parts]] -----------------------------------------------------------------------------------


def _read_parts(
    raw: object,
    languages: Sequence[LanguageCode] | None,
    banks: Mapping[str, Bank],
    report: Report,
) -> tuple[Part, ...] | None:
    """The `[[parts]]` tables; part ids must be unique within the exam."""
    if not isinstance(raw, list) or not raw:
        report(f"parts must be a non-empty array of tables ([[parts]]), got {describe(raw)}")
        return None
    parts: list[Part] = []
    complete = True
    seen: set[str] = set()
    for position, table in enumerate(raw, start=1):
        part = _read_part(table, position, languages, banks, report)
        if part is None:
            complete = False
        elif part.id in seen:
            report(f"duplicate part id '{part.id}'")
            complete = False
        else:
            seen.add(part.id)
            parts.append(part)
    return tuple(parts) if complete else None


def _read_part(
    raw: object,
    position: int,
    languages: Sequence[LanguageCode] | None,
    banks: Mapping[str, Bank],
    file_report: Report,
) -> Part | None:
    """One part: its bank must be loaded, hold the exam's languages and fill the blueprint."""
    if not isinstance(raw, dict):
        file_report(f"part #{position} must be a table, got {describe(raw)}")
        return None
    raw_id = raw.get("id")
    label = f"part '{raw_id}'" if isinstance(raw_id, str) and raw_id else f"part #{position}"

    def report(reason: str) -> None:
        file_report(f"{label}: {reason}")

    complete = check_fields(raw, report, required=_PART_REQUIRED, optional=_PART_OPTIONAL)
    part_id = check_id(raw["id"], "id", report) if "id" in raw else None
    title = check_localized(raw["title"], "title", languages, report) if "title" in raw else None
    bank = _find_bank(raw["bank"], languages, banks, report) if "bank" in raw else None
    limit_s, warnings_s = _read_time(raw, report)
    shuffle_options = raw.get("shuffle_options", True)
    if not isinstance(shuffle_options, bool):
        report(f"shuffle_options must be true or false, got {describe(shuffle_options)}")
        complete = False
    blueprint = _read_blueprint(raw["blueprint"], bank, report) if "blueprint" in raw else None
    if (
        not complete
        or part_id is None
        or title is None
        or bank is None
        or limit_s is None
        or warnings_s is None
        or blueprint is None
    ):
        return None
    assert isinstance(shuffle_options, bool)
    return Part(
        id=part_id,
        title=frozen_map(title),
        bank_id=bank.id,
        time_limit_s=limit_s,
        blueprint=blueprint,
        warnings_s=warnings_s,
        shuffle_options=shuffle_options,
    )


def _find_bank(
    raw: object,
    languages: Sequence[LanguageCode] | None,
    banks: Mapping[str, Bank],
    report: Report,
) -> Bank | None:
    """The part's bank among the loaded ones; it must have a text in every exam language."""
    bank_id = check_id(raw, "bank", report)
    if bank_id is None:
        return None
    bank = banks.get(bank_id)
    if bank is None:
        loaded = ", ".join(f"'{name}'" for name in sorted(banks)) or "none"
        report(f"bank '{bank_id}' is not loaded (loaded: {loaded})")
        return None
    missing = [language for language in languages or () if language not in bank.languages]
    for language in missing:
        have = ", ".join(f"'{code}'" for code in bank.languages)
        report(f"language '{language}' is not in bank '{bank.id}' (it has {have})")
    return None if missing else bank


def _read_time(raw: dict[str, object], report: Report) -> tuple[int | None, tuple[int, ...] | None]:
    """The part's limit and warnings in seconds, from `minutes` or `seconds` (exactly one)."""
    unit = "seconds" if "seconds" in raw else "minutes"
    if ("seconds" in raw) == ("minutes" in raw):
        report("give the part's time as exactly one of 'minutes' or 'seconds'")
        return None, None
    other = "warnings_minutes" if unit == "seconds" else "warnings_seconds"
    if other in raw:
        report(f"'{other}' does not go with '{unit}'; use 'warnings_{unit}'")
        return None, None
    scale = 60 if unit == "minutes" else 1
    limit = _read_limit(raw[unit], unit, report)
    warnings = _read_warnings(raw.get(f"warnings_{unit}"), limit, unit, report)
    if limit is None or warnings is None:
        return None, warnings
    return limit * scale, tuple(warning * scale for warning in warnings)


def _read_limit(raw: object, unit: str, report: Report) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        report(f"{unit} must be a positive integer, got {raw!r}")
        return None
    return raw


def _read_warnings(
    raw: object, limit: int | None, unit: str, report: Report
) -> tuple[int, ...] | None:
    """Warning times in `unit`, latest-first; each must fall inside the part's time.

    The default (15, 5, 1 minutes) silently drops warnings a short part cannot have; warnings
    written in the file are reported instead, since the author meant them.
    """
    minutes = limit if unit == "minutes" else None
    if raw is None:
        if unit == "seconds":
            return ()
        kept = [
            warning for warning in DEFAULT_WARNINGS_MINUTES if minutes is None or warning < minutes
        ]
        return tuple(kept)
    if not isinstance(raw, list):
        report(f"warnings_{unit} must be a list of {unit}, got {describe(raw)}")
        return None
    complete = True
    seen: set[int] = set()
    for warning in raw:
        if isinstance(warning, bool) or not isinstance(warning, int) or warning < 1:
            report(f"warnings_{unit}: {warning!r} is not a positive integer")
            complete = False
        elif warning in seen:
            report(f"warnings_{unit}: {warning} is listed twice")
            complete = False
        elif limit is not None and warning >= limit:
            report(f"warnings_{unit}: {warning} is not shorter than the part's {limit} {unit}")
            complete = False
        else:
            seen.add(warning)
    if not complete:
        return None
    return tuple(sorted(seen, reverse=True))


def _read_blueprint(raw: object, bank: Bank | None, file_report: Report) -> Blueprint | None:
    """The dimension must be the bank's and every count no larger than the items carrying it."""
    if not isinstance(raw, dict):
        file_report(f"blueprint must be a table, got {describe(raw)}")
        return None

    def report(reason: str) -> None:
        file_report(f"blueprint: {reason}")

    if not check_fields(raw, report, required=_BLUEPRINT_FIELDS):
        return None
    dimension = raw["dimension"]
    counts = raw["counts"]
    complete = True
    if not isinstance(dimension, str):
        report(f"dimension must be a string, got {describe(dimension)}")
        return None
    declared: Mapping[str, object] | None = None
    if bank is not None:
        declared = bank.tags.get(dimension)
        if declared is None:
            have = ", ".join(f"'{name}'" for name in bank.tags) or "none"
            report(
                f"dimension '{dimension}' is not a dimension of bank '{bank.id}' (it has {have})"
            )
            complete = False
    if not isinstance(counts, dict) or not counts:
        report(f"counts must be a non-empty table of value = count, got {describe(counts)}")
        return None
    checked: dict[str, int] = {}
    for value, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            report(f"count of '{value}' must be a positive integer, got {count!r}")
            complete = False
        elif bank is None or declared is None:
            pass  # the bank or its dimension is already reported; counts cannot be checked
        elif value not in declared:
            report(f"'{value}' is not a value of dimension '{dimension}' in bank '{bank.id}'")
            complete = False
        else:
            available = len(bank.items_tagged(dimension, value))
            if count > available:
                report(
                    f"asks for {count} items with {dimension} = '{value}', "
                    f"bank '{bank.id}' has {available}"
                )
                complete = False
        checked[value] = count
    if not complete or bank is None:
        return None
    return Blueprint(dimension=dimension, counts=frozen_map(checked))


# --- [[sites]] -----------------------------------------------------------------------------------


def _read_sites(
    raw: object, languages: Sequence[LanguageCode] | None, file_report: Report
) -> tuple[Site, ...] | None:
    """The `[[sites]]` tables (test centres); site ids must be unique within the exam."""
    if not isinstance(raw, list) or not raw:
        file_report(f"sites must be a non-empty array of tables ([[sites]]), got {describe(raw)}")
        return None
    sites: list[Site] = []
    complete = True
    seen: set[str] = set()
    for position, table in enumerate(raw, start=1):
        if not isinstance(table, dict):
            file_report(f"site #{position} must be a table, got {describe(table)}")
            complete = False
            continue
        raw_id = table.get("id")
        label = f"site '{raw_id}'" if isinstance(raw_id, str) and raw_id else f"site #{position}"

        def report(reason: str, label: str = label) -> None:
            file_report(f"{label}: {reason}")

        fields_ok = check_fields(table, report, required=_SITE_FIELDS)
        site_id = check_id(table["id"], "id", report) if "id" in table else None
        title = (
            check_localized(table["title"], "title", languages, report)
            if "title" in table
            else None
        )
        if not fields_ok or site_id is None or title is None:
            complete = False
        elif site_id in seen:
            file_report(f"duplicate site id '{site_id}'")
            complete = False
        else:
            seen.add(site_id)
            sites.append(Site(site_id, frozen_map(title)))
    return tuple(sites) if complete else None


# --- [[staff]] ----------------------------------------------------------------------------------


def _read_staff(raw: object, exam: Exam | None, file_report: Report) -> tuple[Staff, ...] | None:
    """Proctors, observers and admins; a proctor or observer needs at least one known site."""
    if not isinstance(raw, list):
        file_report(f"staff must be an array of tables ([[staff]]), got {describe(raw)}")
        return None
    known_sites = [site.id for site in exam.sites] if exam is not None else None
    staff: list[Staff] = []
    complete = True
    seen: set[str] = set()
    for position, table in enumerate(raw, start=1):
        if not isinstance(table, dict):
            file_report(f"staff #{position} must be a table, got {describe(table)}")
            complete = False
            continue
        raw_login = table.get("login")
        label = f"staff '{raw_login}'" if isinstance(raw_login, str) else f"staff #{position}"

        def report(reason: str, label: str = label) -> None:
            file_report(f"{label}: {reason}")

        fields_ok = check_fields(table, report, required=_STAFF_REQUIRED, optional=_STAFF_OPTIONAL)
        login = check_id(table["login"], "login", report) if "login" in table else None
        name = check_text(table["name"], "name", report) if "name" in table else None
        role_text = _read_choice(table.get("role"), "role", [r.value for r in Role], report)
        sites = _read_staff_sites(table.get("sites", []), known_sites, report)
        if role_text in (Role.PROCTOR, Role.OBSERVER) and sites == ():
            report(f"a {role_text} needs at least one site")
            sites = None
        if not fields_ok or login is None or name is None or role_text is None or sites is None:
            complete = False
        elif login in seen:
            file_report(f"duplicate staff login '{login}'")
            complete = False
        else:
            seen.add(login)
            role = Role(role_text)
            if role is Role.ADMIN and not sites and known_sites is not None:
                sites = tuple(known_sites)
            staff.append(Staff(login, exam.id if exam else "", name, role, sites))
    return tuple(staff) if complete else None


def _read_staff_sites(
    raw: object, known_sites: Sequence[str] | None, report: Report
) -> tuple[str, ...] | None:
    if not isinstance(raw, list) or not all(isinstance(site, str) for site in raw):
        report(f"sites must be a list of site ids, got {describe(raw)}")
        return None
    unknown = [site for site in raw if known_sites is not None and site not in known_sites]
    for site in unknown:
        report(f"site '{site}' is not a site of this exam")
    return None if unknown else tuple(raw)


# --- [candidates] --------------------------------------------------------------------------------


def _read_candidates(
    raw: object,
    exam_path: Path,
    exam: Exam | None,
    header: _Header | None,
    site_ids: set[str] | None,
    file_report: Report,
    problems: list[Problem],
) -> tuple[Candidate, ...] | None:
    """Candidates from a CSV file beside the exam file, or `generate = N` fictional ones."""
    if not isinstance(raw, dict):
        file_report(f"[candidates] must be a table, got {describe(raw)}")
        return None

    def report(reason: str) -> None:
        file_report(f"[candidates]: {reason}")

    if not check_fields(raw, report, required=(), optional=("file", "generate", "seed")):
        return None
    if ("file" in raw) == ("generate" in raw):
        report("give either file or generate, not both or neither")
        return None
    if "file" in raw:
        if "seed" in raw:
            report("seed goes with generate only")
            return None
        name = check_text(raw["file"], "file", report)
        if name is None:
            return None
        return _read_candidate_file(exam_path.parent / name, header, site_ids, problems)
    count = raw["generate"]
    seed = raw.get("seed", 0)
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or not 0 < count <= MAX_GENERATED_CANDIDATES
    ):
        report(f"generate must be an integer from 1 to {MAX_GENERATED_CANDIDATES}, got {count!r}")
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        report(f"seed must be an integer, got {describe(seed)}")
        return None
    return generate_candidates(exam, count, seed) if exam is not None else None


def _read_candidate_file(
    path: Path,
    header: _Header | None,
    site_ids: set[str] | None,
    problems: list[Problem],
) -> tuple[Candidate, ...] | None:
    """A CSV with columns id,full_name,site,office,document (UTF-8, an Excel BOM is fine)."""

    def report(reason: str, item_id: str | None = None) -> None:
        problems.append(Problem(str(path), item_id, reason))

    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError) as error:
        report(f"cannot read the candidate file: {error}")
        return None
    if not rows:
        report("the candidate file is empty; its first line names the columns")
        return None
    columns = rows[0]
    complete = True
    for column in CANDIDATE_COLUMNS:
        if column not in columns:
            report(f"missing column '{column}'")
            complete = False
    for column in columns:
        if column not in CANDIDATE_COLUMNS:
            report(f"unknown column '{column}'")
            complete = False
    if not complete:
        return None
    return _read_candidate_rows(rows, header, site_ids, report)


def _read_candidate_rows(
    rows: list[list[str]],
    header: _Header | None,
    site_ids: set[str] | None,
    report: FileReport,
) -> tuple[Candidate, ...] | None:
    """Check each row: unique ids, a name, a known site and, for IIN exams, a valid IIN."""
    columns = rows[0]
    candidates: list[Candidate] = []
    first_line: dict[str, int] = {}
    complete = True
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            report(f"line {line}: has {len(row)} fields, the header has {len(columns)}")
            complete = False
            continue
        fields = {column: cell.strip() for column, cell in zip(columns, row, strict=True)}
        candidate_id = fields["id"]

        def row_report(reason: str, line: int = line, candidate_id: str = candidate_id) -> None:
            report(f"line {line}: {reason}", candidate_id or None)

        row_ok = check_id(candidate_id, "candidate id", row_report) is not None
        if candidate_id in first_line:
            row_report(f"duplicate candidate id (first on line {first_line[candidate_id]})")
            row_ok = False
        else:
            first_line[candidate_id] = line
        if not fields["full_name"]:
            row_report("full_name is empty")
            row_ok = False
        if site_ids is not None and fields["site"] not in site_ids:
            row_report(f"unknown site '{fields['site']}'")
            row_ok = False
        if header is not None and header.identity_document == "iin" and fields["document"]:
            problem = iin_problem(fields["document"])
            if problem is not None:
                row_report(f"IIN {fields['document']}: {problem}")
                row_ok = False
        if not row_ok:
            complete = False
        elif header is not None:
            candidates.append(
                Candidate(
                    id=candidate_id,
                    exam_id=header.id,
                    full_name=fields["full_name"],
                    site_id=fields["site"],
                    office=fields["office"],
                    document=fields["document"],
                )
            )
    return tuple(candidates) if complete and header is not None else None
