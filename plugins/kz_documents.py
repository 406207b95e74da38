"""The KZ result certificate (KZ-8), in the language the candidate took the test in (kk or ru).

Given to the candidate when the sitting closes: the score overall and per act against the 70 %
thresholds, the verdict, the date through which the result is valid and, when not passed, the
first day a new sitting is allowed (KZ-9).
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.book import ResultsBook
from engine.dates import day_text, exam_zone, local_text
from engine.documents import Document, SignatureLine, slug
from engine.model import Exam
from engine.schemes import Outcome, PartResult

CERTIFICATE = "certificate"
DEFAULT_TIMEZONE = "Asia/Almaty"

_LABELS = {
    "ru": {
        "title": "Справка о результатах компьютерного тестирования на знание законодательства",
        "exam": "Тестирование",
        "candidate": "Кандидат",
        "iin": "ИИН",
        "site": "Место тестирования",
        "language": "Язык тестирования",
        "closed": "Дата и время окончания",
        "correct": "Правильных ответов",
        "of": "из",
        "result": "Результат",
        "pass": "тестирование пройдено: все пороговые значения достигнуты",
        "fail": "тестирование не пройдено",
        "annulled": "результаты аннулированы",
        "valid": "Результат действителен по (включительно)",
        "retake": "Повторное тестирование допускается с",
        "act": "Нормативный правовой акт",
        "items": "Вопросов",
        "right": "Правильных",
        "needed": "Необходимо",
        "verdict": "Порог",
        "met": "достигнут",
        "not_met": "не достигнут",
        "overall": "Всего по тесту",
        "changed": "Балл изменён: {before} → {after} ({cause})",
        "signer": "Кандидат ознакомлен",
        "threshold_note": "Пороговое значение: не менее {percent} % правильных ответов от всех "
        "вопросов и от вопросов по каждому из актов, отмеченных в таблице.",
    },
    "kk": {
        "title": "Заңнаманы білуге компьютерлік тестілеу нәтижелері туралы анықтама",
        "exam": "Тестілеу",
        "candidate": "Үміткер",
        "iin": "ЖСН",
        "site": "Тестілеу өткізілген орын",
        "language": "Тестілеу тілі",
        "closed": "Аяқталған күні мен уақыты",
        "correct": "Дұрыс жауаптар",
        "of": "/",
        "result": "Нәтиже",
        "pass": "тестілеуден өтті: барлық шекті мәндерге қол жеткізілді",
        "fail": "тестілеуден өтпеді",
        "annulled": "нәтижелері жойылды",
        "valid": "Нәтиже мына күнді қоса алғанда жарамды",
        "retake": "Қайта тестілеуге рұқсат етілетін күн",
        "act": "Нормативтік құқықтық акт",
        "items": "Сұрақтар",
        "right": "Дұрыс",
        "needed": "Қажет",
        "verdict": "Шекті мән",
        "met": "қол жеткізілді",
        "not_met": "қол жеткізілмеді",
        "overall": "Тест бойынша барлығы",
        "changed": "Балл өзгертілді: {before} → {after} ({cause})",
        "signer": "Үміткер танысты",
        "threshold_note": "Шекті мән: барлық сұрақтардың және кестеде көрсетілген әр акт "
        "бойынша сұрақтардың кемінде {percent} % дұрыс жауаптары.",
    },
}
_LANGUAGE_NAMES = {
    "kk": {"kk": "қазақ тілі", "ru": "орыс тілі"},
    "ru": {"kk": "казахский язык", "ru": "русский язык"},
}


def certificates(
    exam: Exam, book: ResultsBook, acts: Sequence[str], percent: int
) -> list[Document]:
    """One certificate per scored or annulled sitting in `book`."""
    documents = []
    for _, result in sorted(book.results.items(), key=lambda pair: pair[0]):
        if result.outcome not in (Outcome.PASS, Outcome.FAIL, Outcome.ANNULLED):
            continue
        documents.append(_certificate(exam, book, result, acts, percent))
    return documents


def _certificate(
    exam: Exam, book: ResultsBook, result: PartResult, acts: Sequence[str], percent: int
) -> Document:
    candidate = book.candidate(result.candidate_id)
    sitting = book.sittings.get((result.candidate_id, result.part_id))
    language = sitting.language if sitting and sitting.language in _LABELS else "ru"
    text = _LABELS[language]
    tz = exam_zone(exam, DEFAULT_TIMEZONE)
    site = next((s for s in exam.sites if s.id == candidate.site_id), None)
    terms = book.terms.get((result.candidate_id, result.part_id), {})
    fields = [
        (text["exam"], exam.title.get(language) or next(iter(exam.title.values()), exam.id)),
        (text["candidate"], candidate.full_name),
        (text["iin"], candidate.document or "—"),
        (text["site"], (site.title.get(language) or site.id) if site else candidate.site_id),
    ]
    if sitting is not None:
        if sitting.language:
            fields.append((text["language"], _LANGUAGE_NAMES[language].get(sitting.language, "")))
        if sitting.closed_at is not None:
            fields.append((text["closed"], local_text(sitting.closed_at, tz)))
    details = result.details
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = []
    if result.outcome is Outcome.ANNULLED:
        fields.append((text["result"], f"{text['annulled']}: {'; '.join(result.reasons)}"))
    else:
        right, items = int(result.score), int(result.max_score)
        fields.append(
            (text["correct"], f"{right} {text['of']} {items} ({details.get('percent', '')} %)")
        )
        fields.append((text["result"], text["pass" if result.outcome is Outcome.PASS else "fail"]))
        columns = (text["act"], text["items"], text["right"], text["needed"], text["verdict"])
        needed = details.get("needed", 0)
        rows.append(_row(text["overall"], items, right, needed, text))
        per_act = details.get("per_act", {})
        for act in acts:
            counts = per_act.get(act)
            if isinstance(counts, dict):
                title = book.tag_title(result.part_id, act, language)
                rows.append(_row(title, counts["items"], counts["correct"], counts["needed"], text))
    if "valid_through" in terms:
        fields.append((text["valid"], day_text(terms["valid_through"])))
    if "retake_from" in terms:
        fields.append((text["retake"], day_text(terms["retake_from"])))
    notes = [text["threshold_note"].format(percent=percent)]
    if sitting is not None:
        for change in book.changes_of(sitting.sitting_id):
            notes.append(
                text["changed"].format(
                    before=f"{change.score_before:g}",
                    after=f"{change.score_after:g}",
                    cause=change.cause,
                )
            )
    return Document(
        kind=CERTIFICATE,
        name=slug(CERTIFICATE, result.candidate_id, result.part_id),
        language=language,
        title=text["title"],
        fields=tuple(fields),
        columns=columns,
        rows=tuple(rows),
        notes=tuple(notes),
        signature_lines=(SignatureLine(text["signer"], candidate.full_name),),
    )


def _row(title: str, items: int, right: int, needed: int, text: dict[str, str]) -> tuple[str, ...]:
    verdict = text["met"] if right >= needed else text["not_met"]
    return (title, str(items), str(right), str(needed), verdict)
