"""The UA forms, in Ukrainian: results sheets (annex 1), rating lists (annex 2), removal acts
(UA-3) and appeal protocols (UA-16), built from an exam's results book.

The wording of headings and columns follows the forms annexed to the order (annexes 1 and 2);
the electronic signatures recorded for each result (UA-9) are printed where the form has its
signature columns, and every score change is noted where the form has its notes column.
"""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo

from engine.book import (
    VOTES,
    AppealRecord,
    RatingApproval,
    ResultsBook,
    SignatureRecord,
    SittingRecord,
)
from engine.dates import exam_zone, local_text
from engine.documents import Document, SignatureLine, slug
from engine.model import Exam
from engine.rating_approval import approval_state
from engine.schemes import ExamResult, Outcome, PartResult, RatingList

RESULTS_SHEET = "results-sheet"
RATING_LIST = "rating-list"
REMOVAL_ACT = "removal-act"
APPEAL_PROTOCOL = "appeal-protocol"
DEFAULT_TIMEZONE = "Europe/Kyiv"
LANGUAGE = "uk"

_ORDER = "Порядку проведення тестування для зайняття посади прокурора місцевої прокуратури"
_SHEET_SUBJECT = {
    "professional": "на знання законодавчої бази (професійний тест)",
    "aptitude": "загальних здібностей",
}
_SHEET_COLUMN = {
    "professional": "Результати тестування на знання законодавчої бази (професійний тест)",
    "aptitude": "Результати тестування загальних здібностей",
}
_ROLE_TITLES = {
    "head": "Керівник робочої групи",
    "deputy": "Заступник керівника робочої групи",
    "secretary": "Секретар робочої групи",
    "member": "Член робочої групи",
}
_VOTE_TITLES = {"uphold": "за задоволення скарги", "reject": "проти", "abstain": "утримався"}
_SUBJECT_TITLES = {
    "result": "результати тестування (кількість одержаних балів)",
    "non-admission": "рішення щодо недопущення до тестування",
}
_ALPHABET = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
_RANK = {letter: index for index, letter in enumerate(_ALPHABET)}


def ukrainian_order(text: str) -> tuple[tuple[int, str], ...]:
    """A sort key in Ukrainian alphabetical order (Unicode order puts і, ї, є, ґ elsewhere)."""
    return tuple((_RANK.get(char, len(_ALPHABET) + ord(char)), char) for char in text.lower())


def build(exam: Exam, kind: str, book: ResultsBook, tie_rule: str) -> list[Document]:
    if kind == RESULTS_SHEET:
        return results_sheets(exam, book)
    if kind == RATING_LIST:
        return rating_lists(exam, book, tie_rule)
    if kind == REMOVAL_ACT:
        return removal_acts(exam, book)
    if kind == APPEAL_PROTOCOL:
        return appeal_protocols(exam, book)
    raise ValueError(f"unknown document kind {kind!r}")


def number(value: float) -> str:
    """A score as printed in Ukrainian: whole numbers bare, otherwise two decimals after a comma."""
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}".replace(".", ",")


# --- annex 1: results sheets ---------------------------------------------------------------


def results_sheets(exam: Exam, book: ResultsBook) -> list[Document]:
    """One sheet per part and local office, candidates in alphabetical order."""
    documents = []
    tz = exam_zone(exam, DEFAULT_TIMEZONE)
    for part in exam.parts:
        offices: dict[str, list[SittingRecord]] = {}
        for (candidate_id, part_id), sitting in book.sittings.items():
            if part_id == part.id:
                offices.setdefault(book.candidate(candidate_id).office or "—", []).append(sitting)
        for office in sorted(offices, key=ukrainian_order):
            sittings = sorted(
                offices[office],
                key=lambda s: (
                    ukrainian_order(book.candidate(s.candidate_id).full_name),
                    s.candidate_id,
                ),
            )
            rows = []
            for place, sitting in enumerate(sittings, start=1):
                candidate = book.candidate(sitting.candidate_id)
                result = book.results.get((sitting.candidate_id, part.id))
                signed = book.signatures.get(sitting.sitting_id, {})
                rows.append(
                    (
                        str(place),
                        candidate.full_name,
                        _result_cell(result),
                        _signature_cell(signed.get("candidate"), book, tz),
                        _signature_cell(signed.get("member"), book, tz),
                        _sheet_note(book, sitting, result, part.id),
                    )
                )
            documents.append(
                Document(
                    kind=RESULTS_SHEET,
                    name=slug(RESULTS_SHEET, part.id, office),
                    language=LANGUAGE,
                    reference=f"Додаток 1 до {_ORDER} (пункти 3.11, 3.14 розділу III)",
                    title="Відомість про результати тестування",
                    subtitle=(
                        _SHEET_SUBJECT.get(part.id, part.title.get(LANGUAGE, part.id)),
                        office,
                        _centre(exam, [s.candidate_id for s in sittings], book),
                    ),
                    columns=(
                        "№ з/п",
                        "Прізвище, ім'я, по батькові кандидата",
                        _SHEET_COLUMN.get(
                            part.id, f"Результати: {part.title.get(LANGUAGE, part.id)}"
                        ),
                        "Підпис кандидата",
                        "Підпис члена робочої групи",
                        "Примітки",
                    ),
                    rows=tuple(rows),
                    notes=(
                        "Електронні підписи кандидата та члена робочої групи (UA-9) записані на "
                        "сервері й скріплені ключем, указаним нижче.",
                    ),
                    signature_lines=_head_and_secretary(book),
                )
            )
    return documents


def _result_cell(result: PartResult | None) -> str:
    if result is None:
        return "—"
    if result.outcome is Outcome.ANNULLED:
        return "відсторонено"
    if result.outcome is Outcome.ABSENT:
        return "не з'явився"
    cell = f"{number(result.score)} з {number(result.max_score)}"
    if result.max_score != 100:
        scaled = result.details.get("scaled_to_100")
        if isinstance(scaled, int | float):
            cell += f" ({number(scaled)} зі 100)"
    return cell


def _sheet_note(
    book: ResultsBook, sitting: SittingRecord, result: PartResult | None, part_id: str
) -> str:
    notes = []
    if sitting.state == "terminated":
        notes.append(f"відсторонено: {sitting.close_reason}; складено акт")
    elif sitting.state == "no-show":
        notes.append("не з'явився своєчасно; до тестування не допускається")
    if result is not None and result.outcome is Outcome.SCORED:
        categories = result.details.get("by_category")
        if isinstance(categories, dict) and categories:
            notes.append(
                ", ".join(
                    f"{book.tag_title(part_id, name, LANGUAGE).lower()}: "
                    f"{counts.get('correct')} з {counts.get('items')}"
                    for name, counts in sorted(categories.items())
                    if isinstance(counts, dict)
                )
            )
    for change in book.changes_of(sitting.sitting_id):
        notes.append(
            f"бал змінено з {number(change.score_before)} на {number(change.score_after)} "
            f"({change.cause})"
        )
    return "; ".join(notes)


def _signature_cell(signature: SignatureRecord | None, book: ResultsBook, tz: ZoneInfo) -> str:
    """What stands for a signature on the sheet: who (members), when, and the seal's start."""
    if signature is None:
        return ""
    who = book.member_name(signature.signer) if signature.role == "member" else ""
    when = local_text(signature.at, tz)
    return " ".join(part for part in (who, when, f"ЕП {signature.signature[:12]}…") if part)


def _centre(exam: Exam, candidate_ids: list[str], book: ResultsBook) -> str:
    """The regional centre(s) (UA-1) where these candidates sat."""
    sites = {book.candidate(candidate_id).site_id for candidate_id in candidate_ids}
    titles = [site.title.get(LANGUAGE, site.id) for site in exam.sites if site.id in sites]
    return "; ".join(titles)


def _head_and_secretary(book: ResultsBook) -> tuple[SignatureLine, ...]:
    lines = []
    for role in ("head", "secretary"):
        names = [m.full_name for m in book.group if m.role == role]
        lines.append(SignatureLine(f"{_ROLE_TITLES[role]} регіонального центру", ", ".join(names)))
    return tuple(lines)


# --- annex 2: rating lists -----------------------------------------------------------------


def rating_lists(exam: Exam, book: ResultsBook, tie_rule: str) -> list[Document]:
    results = {result.candidate_id: result for result in book.exam_results}
    return [_rating_list(exam, book, rating, results, tie_rule) for rating in book.ratings]


def _rating_list(
    exam: Exam,
    book: ResultsBook,
    rating: RatingList,
    results: Mapping[str, ExamResult],
    tie_rule: str,
) -> Document:
    posts = book.posts.get(rating.group)
    selection = rating.top(posts) if posts is not None else None
    rows = []
    for entry in rating.entries:
        result = results[entry.candidate_id]
        raw, items = result.details.get("raw", {}), result.details.get("items", {})
        notes = []
        if entry.tied:
            notes.append("рівний бал (спільне місце)")
        if selection is not None and entry.candidate_id in selection.chosen:
            notes.append(f"у межах кількості посад ({posts})")
        if selection is not None and entry.candidate_id in selection.tied_at_boundary:
            notes.append("рівний бал на межі кількості посад: вирішує робоча група")
        rows.append(
            (
                f"{entry.position}{'=' if entry.tied else ''}",
                book.candidate(entry.candidate_id).full_name,
                _part_cell(raw, items, "professional"),
                _part_cell(raw, items, "aptitude"),
                number(entry.score),
                "; ".join(notes),
            )
        )
    for candidate_id, why in rating.unranked:
        rows.append(("—", book.candidate(candidate_id).full_name, "", "", "", _unranked_note(why)))
    fields = (("Кількість посад", str(posts)),) if posts is not None else ()
    listed = [entry.candidate_id for entry in rating.entries]
    centre = _centre(exam, listed + [candidate_id for candidate_id, _ in rating.unranked], book)
    return Document(
        kind=RATING_LIST,
        name=slug(RATING_LIST, rating.group),
        language=LANGUAGE,
        reference=f"Додаток 2 до {_ORDER} (пункт 3.16 розділу III)",
        title="Рейтинговий список",
        subtitle=(rating.group, centre),
        fields=fields,
        columns=(
            "№ з/п",
            "Прізвище, ім'я, по батькові кандидата",
            "Результати тестування на знання законодавчої бази (професійний тест)",
            "Результати тестування на загальні здібності",
            "Підсумковий бал",
            "Примітки",
        ),
        rows=tuple(rows),
        notes=(
            "Підсумковий бал — сума балів двох тестів, кожен приведений до 100 (разом не більше "
            "200, по 50 %).",
            tie_rule,
            _approval_note(book.rating_approvals.get(rating.group), rating, exam),
        ),
        signature_lines=_head_and_secretary(book),
    )


def _approval_note(approval: RatingApproval | None, rating: RatingList, exam: Exam) -> str:
    """Whether the working group approved this very list (UA-14), and how it voted."""
    state = approval_state(approval, rating)
    if approval is None or state == "none":
        return "Рейтинговий список робочою групою ще не затверджено."
    when = local_text(approval.at, exam_zone(exam, DEFAULT_TIMEZONE))
    counts = {vote: sum(1 for v in approval.votes.values() if v == vote) for vote in VOTES}
    vote = (
        f"{when}, протокол {approval.protocol}: присутні {len(approval.present)} з "
        f"{approval.group_size} (кворум — не менше {approval.quorum_needed}); за — "
        f"{counts['uphold']}, проти — {counts['reject']}, утрималися — {counts['abstain']}"
    )
    if state == "changed":
        return (
            f"Список змінився після голосування робочої групи ({vote}): потребує нового "
            "затвердження."
        )
    if state == "rejected":
        return f"Робоча група не затвердила рейтинговий список ({vote})."
    return f"Затверджено робочою групою більшістю голосів ({vote})."


def _part_cell(raw: Mapping[str, float], items: Mapping[str, float], part_id: str) -> str:
    if part_id not in raw:
        return ""
    score, maximum = raw[part_id], items[part_id]
    if maximum == 100:
        return number(score)
    return f"{number(100 * score / maximum)} ({number(score)} з {number(maximum)})"


def _unranked_note(why: str) -> str:
    outcome = why.split(":", 1)[0]
    return {
        Outcome.ANNULLED.value: "відсторонено від тестування; до рейтингу не включено",
        Outcome.ABSENT.value: "не з'явився своєчасно; до рейтингу не включено",
        Outcome.INCOMPLETE.value: "не має результатів обох тестів; до рейтингу не включено",
    }.get(outcome, why)


# --- removal acts (UA-3) -------------------------------------------------------------------


def removal_acts(exam: Exam, book: ResultsBook) -> list[Document]:
    tz = exam_zone(exam, DEFAULT_TIMEZONE)
    documents = []
    for (candidate_id, part_id), sitting in sorted(book.sittings.items()):
        if sitting.state != "terminated":
            continue
        candidate = book.candidate(candidate_id)
        part_title = _SHEET_SUBJECT.get(part_id, part_id)
        when = local_text(sitting.closed_at, tz) if sitting.closed_at is not None else "—"
        by = book.member_name(sitting.closed_by) if sitting.closed_by else "—"
        documents.append(
            Document(
                kind=REMOVAL_ACT,
                name=slug(REMOVAL_ACT, candidate_id, part_id),
                language=LANGUAGE,
                title="Акт про відсторонення кандидата від подальшої участі в тестуванні",
                fields=(
                    ("Дата і час", when),
                    ("Регіональний центр", _centre(exam, [candidate_id], book)),
                    ("Місцева прокуратура", candidate.office or "—"),
                    ("Кандидат", candidate.full_name),
                    ("Документ, що посвідчує особу", candidate.document or "—"),
                    ("Тест", f"тестування {part_title}"),
                    ("Порушення порядку проведення тестування", sitting.close_reason or "—"),
                    ("Відсторонив", by),
                    ("Підстава", "пункт 3.10 розділу III Порядку (UA-3, UA-8)"),
                ),
                notes=(
                    "Результати тестування кандидата не враховуються; до подальшого тестування "
                    "кандидат не допускається.",
                    "Скарги з питань відсторонення від тестування не розглядаються (пункт 8.2 "
                    "розділу VIII Порядку).",
                ),
                signature_lines=(
                    SignatureLine("Член робочої групи", by if by != "—" else ""),
                    SignatureLine("З актом ознайомлений (кандидат)", candidate.full_name),
                ),
            )
        )
    return documents


# --- appeal protocols (UA-16) --------------------------------------------------------------


def appeal_protocols(exam: Exam, book: ResultsBook) -> list[Document]:
    return [
        _protocol(exam, book, appeal)
        for appeal in sorted(book.appeals, key=lambda a: a.number)
        if appeal.status in ("upheld", "rejected")
    ]


def _protocol(exam: Exam, book: ResultsBook, appeal: AppealRecord) -> Document:
    tz = exam_zone(exam, DEFAULT_TIMEZONE)
    candidate = book.candidate(appeal.candidate_id)
    assert appeal.decided_at is not None
    present, needed = len(appeal.present), appeal.quorum_needed
    votes = [(member, appeal.votes.get(member, "")) for member in appeal.present]
    tally = {v: sum(1 for _, cast in votes if cast == v) for v in _VOTE_TITLES}
    subject = _SUBJECT_TITLES.get(appeal.subject, appeal.subject)
    if appeal.part_id:
        subject += f": тест {_SHEET_SUBJECT.get(appeal.part_id, appeal.part_id)}"
    decision = (
        "скаргу задоволено" if appeal.status == "upheld" else "у задоволенні скарги відмовлено"
    )
    fields = [
        ("Дата засідання", local_text(appeal.decided_at, tz)),
        ("Кандидат", candidate.full_name),
        ("Місцева прокуратура", candidate.office or "—"),
        ("Предмет скарги", subject),
        ("Скаргу подано", f"{local_text(appeal.filed_at, tz)}, особисто кандидатом"),
        ("Обґрунтування скарги", appeal.grounds),
        ("Склад робочої групи", str(appeal.group_size)),
        (
            "Присутні",
            f"{present} (кворум — не менше {needed}: {'є' if present >= needed else 'немає'})",
        ),
        ("Кандидат на засіданні", "присутній" if appeal.candidate_present else "відсутній"),
        (
            "Голосували",
            f"за задоволення — {tally['uphold']}, проти — {tally['reject']}, "
            f"утрималися — {tally['abstain']}",
        ),
        ("Рішення", f"{decision}. {appeal.decision}".strip()),
    ]
    if appeal.score_before is not None and appeal.score_after is not None:
        fields.append(
            (
                "Зміна кількості балів",
                f"з {number(appeal.score_before)} на {number(appeal.score_after)}; зміну "
                "відображено у відомості про результати тестування (пункт 8.6)",
            )
        )
    if appeal.decided_at >= appeal.decide_by:
        fields.append(("Строк розгляду", "скаргу розглянуто пізніше наступного дня після подання"))
    return Document(
        kind=APPEAL_PROTOCOL,
        name=slug(APPEAL_PROTOCOL, str(appeal.number)),
        language=LANGUAGE,
        title=f"Протокол засідання робочої групи з розгляду скарги № {appeal.number}",
        subtitle=(_centre(exam, [appeal.candidate_id], book),),
        fields=tuple(fields),
        columns=("Член робочої групи", "Посада в групі", "Голос"),
        rows=tuple(
            (
                book.member_name(member),
                _ROLE_TITLES.get(_role_of(book, member), ""),
                _VOTE_TITLES.get(cast, cast),
            )
            for member, cast in votes
        ),
        notes=(
            "Рішення ухвалено простою більшістю голосів присутніх членів робочої групи (UA-2). "
            "Рішення робочої групи може бути оскаржене до суду (пункт 8.7).",
        ),
        signature_lines=_head_and_secretary(book),
    )


def _role_of(book: ResultsBook, member_id: str) -> str:
    return next((m.role for m in book.group if m.id == member_id), "")
