"""Fictional demo candidates, and the check of a Kazakh IIN.

Demo and load-test exams need thousands of candidates who look real to a proctor (a Kazakh or
Ukrainian full name, a local office, a document number that passes the checks) without being
anyone: names are combinations drawn from short lists of common first names, surnames and
patronymics, and document numbers are random. Generation is deterministic in (exam, seed), so a
demo restarted from scratch has the same people.
"""

from __future__ import annotations

import datetime
import random

from engine.model import Candidate, Exam, Site

IIN_LENGTH = 12
_IIN_FIRST_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_IIN_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
_CENTURY_BY_DIGIT = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}
"""The IIN's 7th digit: the century of birth, odd for men and even for women."""

UA_ID_CARD_DIGITS = 9


# --- the Kazakh IIN -----------------------------------------------------------------------------


def iin_check_digit(first_eleven: str) -> int | None:
    """The check digit of an IIN from its first 11 digits; None if no IIN is issued with them.

    Weights 1..11 modulo 11; a result of 10 is retried with weights 3..11, 1, 2; a second 10
    means the number is never issued.
    """
    digits = [int(digit) for digit in first_eleven]
    for weights in (_IIN_FIRST_WEIGHTS, _IIN_SECOND_WEIGHTS):
        check = sum(digit * weight for digit, weight in zip(digits, weights, strict=True)) % 11
        if check != 10:
            return check
    return None


def iin_problem(iin: str) -> str | None:
    """Why `iin` is not a valid IIN (length, non-digits, bad date, bad check digit), or None."""
    if len(iin) != IIN_LENGTH:
        return f"an IIN has {IIN_LENGTH} digits, this has {len(iin)} characters"
    if not (iin.isascii() and iin.isdigit()):
        return "an IIN has only digits 0-9"
    century = _CENTURY_BY_DIGIT.get(int(iin[6]))
    if century is None:
        return f"digit 7 (century and sex) is {iin[6]}, not 1 to 6"
    try:
        datetime.date(century + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return f"bad birth date {iin[0:6]} (YYMMDD)"
    expected = iin_check_digit(iin[:11])
    if expected is None:
        return "no IIN is issued with these 11 digits (the check digit would be 10)"
    if int(iin[11]) != expected:
        return f"bad check digit {iin[11]}, expected {expected}"
    return None


def iin_is_valid(iin: str) -> bool:
    """True if `iin` is a well-formed IIN with a valid birth date and check digit."""
    return iin_problem(iin) is None


# --- name lists: common names only, combined at random, so no real person is meant -------------

_KZ_MALE = (
    "Ерлан", "Нұрлан", "Асхат", "Данияр", "Арман", "Бауыржан", "Ержан", "Қайрат",
    "Тимур", "Руслан", "Айдос", "Ернар", "Санжар", "Дәурен", "Мұрат", "Әлихан",
)  # fmt: skip
_KZ_FEMALE = (
    "Айгерім", "Ақерке", "Динара", "Гүлнар", "Жанар", "Мадина", "Әсел", "Аружан",
    "Дана", "Салтанат", "Назерке", "Жұлдыз", "Айым", "Томирис", "Камила", "Аяулым",
)  # fmt: skip
_KZ_SURNAMES = (
    "Ахметов", "Серікбаев", "Жұмабаев", "Нұрланов", "Қасымов", "Оспанов", "Сәрсенбаев",
    "Абдрахманов", "Төлеуов", "Ибраев", "Мұқанов", "Есенов", "Смағұлов", "Әлиев",
    "Бекенов", "Исмаилов", "Омаров", "Қалиев", "Тұрсынов", "Жақыпов",
)  # fmt: skip
"""Male forms; the female form adds 'а' (Ахметов → Ахметова)."""
_KZ_FATHERS = (
    "Болат", "Ерлан", "Нұрлан", "Серік", "Марат", "Қайрат", "Бақыт", "Асқар",
    "Ержан", "Талғат", "Мұрат", "Ғалым", "Дәулет", "Жандос", "Рүстем", "Санат",
)  # fmt: skip
"""Fathers' names ending in a consonant, so both patronymic styles are regular."""

_UA_MALE = (
    "Олександр", "Андрій", "Сергій", "Володимир", "Дмитро", "Іван", "Максим", "Тарас",
    "Богдан", "Олег", "Юрій", "Василь", "Микола", "Петро", "Роман", "Євген",
)  # fmt: skip
_UA_FEMALE = (
    "Олена", "Наталія", "Ірина", "Оксана", "Тетяна", "Юлія", "Світлана", "Марія",
    "Анна", "Катерина", "Ольга", "Вікторія", "Софія", "Дарина", "Галина", "Людмила",
)  # fmt: skip
_UA_SURNAMES = (
    "Шевченко", "Коваленко", "Бондаренко", "Ткаченко", "Кравченко", "Олійник", "Мельник",
    "Бойко", "Шевчук", "Поліщук", "Савченко", "Руденко", "Лисенко", "Марченко", "Мороз",
    "Гончаренко", "Павленко", "Литвиненко", "Кузьменко", "Захарченко",
)  # fmt: skip
"""Surnames that are the same for men and women."""
_UA_PATRONYMICS = (
    ("Олександрович", "Олександрівна"), ("Андрійович", "Андріївна"),
    ("Сергійович", "Сергіївна"), ("Володимирович", "Володимирівна"),
    ("Дмитрович", "Дмитрівна"), ("Іванович", "Іванівна"), ("Миколайович", "Миколаївна"),
    ("Петрович", "Петрівна"), ("Васильович", "Василівна"), ("Юрійович", "Юріївна"),
    ("Олегович", "Олегівна"), ("Романович", "Романівна"), ("Тарасович", "Тарасівна"),
    ("Богданович", "Богданівна"),
)  # fmt: skip
"""(male, female) patronymics; Ukrainian patronymics are irregular enough to list."""

_UA_CITIES = {
    "kyiv": ("Києва", 4),
    "dnipro": ("Дніпра", 3),
    "lviv": ("Львова", 3),
    "odesa": ("Одеси", 3),
    "kharkiv": ("Харкова", 3),
}
"""Site id fragment → (the city in the genitive, how many fictional local offices it has)."""
_UA_DEFAULT_OFFICES = 3

_BIRTH_FIRST = datetime.date(1975, 1, 1)
_BIRTH_LAST = datetime.date(2003, 12, 31)


# --- generation ---------------------------------------------------------------------------------


def generate_candidates(exam: Exam, count: int, seed: int = 0) -> tuple[Candidate, ...]:
    """`count` fictional candidates for `exam`, the same for the same (exam id, seed).

    A longer roster starts with the shorter one, so raising `count` adds people and changes no
    one. Ids are ``<exam id>-00001`` upwards; candidates are spread over the exam's sites
    round-robin. An exam in Ukrainian gets Ukrainian names and a local office of the site's
    city (UA-5); any other exam gets Kazakh names and no office. The document is a valid IIN
    when the exam asks for one, otherwise a 9-digit ID-card number; documents never repeat.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if count and not exam.sites:
        raise ValueError(f"exam '{exam.id}' has no sites to place candidates at")
    rng = random.Random(f"examhall-roster:{exam.id}:{seed}")
    ukrainian = "uk" in exam.languages
    offices = {site.id: _ua_offices(site) for site in exam.sites} if ukrainian else {}
    documents: set[str] = set()
    candidates: list[Candidate] = []
    for index in range(count):
        site = exam.sites[index % len(exam.sites)]
        male = rng.random() < 0.5
        birth = _BIRTH_FIRST + datetime.timedelta(
            days=rng.randrange((_BIRTH_LAST - _BIRTH_FIRST).days + 1)
        )
        document = _fictional_document(rng, exam.identity_document, birth, male)
        while document in documents:  # rare, but a roster must not repeat a document
            document = _fictional_document(rng, exam.identity_document, birth, male)
        documents.add(document)
        full_name = _ua_name(rng, male) if ukrainian else _kz_name(rng, male)
        site_offices = offices.get(site.id, ())
        # Each site's candidates take its offices in turn, so every office gets a group (UA-5).
        office = (
            site_offices[(index // len(exam.sites)) % len(site_offices)] if site_offices else ""
        )
        candidates.append(
            Candidate(
                id=f"{exam.id}-{index + 1:05d}",
                exam_id=exam.id,
                full_name=full_name,
                site_id=site.id,
                office=office,
                document=document,
            )
        )
    return tuple(candidates)


def _fictional_document(
    rng: random.Random, identity_document: str, birth: datetime.date, male: bool
) -> str:
    """A document number of the kind the exam checks: an IIN (KZ-3) or an ID card (UA-6)."""
    if identity_document == "iin":
        return _fictional_iin(rng, birth, male)
    return _fictional_id_card(rng)


def _kz_name(rng: random.Random, male: bool) -> str:
    """Surname, given name, patronymic — in the Kazakh (-ұлы/-қызы) or Russian (-ович) style."""
    surname = rng.choice(_KZ_SURNAMES) + ("" if male else "а")
    given = rng.choice(_KZ_MALE if male else _KZ_FEMALE)
    father = rng.choice(_KZ_FATHERS)
    if rng.random() < 0.4:
        patronymic = father + ("ұлы" if male else "қызы")
    else:
        patronymic = father + ("ович" if male else "овна")
    return f"{surname} {given} {patronymic}"


def _ua_name(rng: random.Random, male: bool) -> str:
    """Surname, given name, patronymic in Ukrainian."""
    surname = rng.choice(_UA_SURNAMES)
    given = rng.choice(_UA_MALE if male else _UA_FEMALE)
    patronymic = rng.choice(_UA_PATRONYMICS)[0 if male else 1]
    return f"{surname} {given} {patronymic}"


def _ua_offices(site: Site) -> tuple[str, ...]:
    """Fictional numbered local offices of the site's city (UA-5 groups candidates by office)."""
    for fragment, (city, count) in _UA_CITIES.items():
        if fragment in site.id.lower():
            return tuple(f"Окружна прокуратура міста {city} №{n}" for n in range(1, count + 1))
    where = site.title.get("uk") or site.id
    return tuple(f"Окружна прокуратура №{n} ({where})" for n in range(1, _UA_DEFAULT_OFFICES + 1))


def _fictional_iin(rng: random.Random, birth: datetime.date, male: bool) -> str:
    """A valid IIN for this birth date and sex, with a random serial (never-issued ones skipped)."""
    century_digit = {1800: 1, 1900: 3, 2000: 5}[birth.year // 100 * 100] + (0 if male else 1)
    while True:
        first_eleven = f"{birth:%y%m%d}{century_digit}{rng.randrange(1, 10_000):04d}"
        check = iin_check_digit(first_eleven)
        if check is not None:
            return f"{first_eleven}{check}"


def _fictional_id_card(rng: random.Random) -> str:
    """A 9-digit number in the shape of a Ukrainian ID-card number."""
    return f"{rng.randrange(10**UA_ID_CARD_DIGITS):0{UA_ID_CARD_DIGITS}d}"
