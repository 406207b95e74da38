"""Fictional candidates and the Kazakh IIN check."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from engine.model import Blueprint, Exam, Part, Site
from engine.roster import generate_candidates, iin_check_digit, iin_is_valid, iin_problem

# Worked by hand with the algorithm (DOMAIN.md KZ-3):
#
# 900514300012 — man born 14.05.1990 (century digit 3), serial 0001. Weights 1..11 over
#   9 0 0 5 1 4 3 0 0 0 1 = 9 + 20 + 5 + 24 + 21 + 11 = 90; 90 mod 11 = 2.
# 851225400009 — woman born 25.12.1985 (century digit 4), serial 0000.
#   8 + 10 + 3 + 8 + 10 + 30 + 28 = 97; 97 mod 11 = 9.
# 900514300305 — serial 0030: the first round gives 9 + 20 + 5 + 24 + 21 + 30 = 109,
#   109 mod 11 = 10, so the second weights 3 4 5 6 7 8 9 10 11 1 2 apply:
#   27 + 30 + 7 + 32 + 27 + 3 = 126; 126 mod 11 = 5.
# 90051430038x — serial 0038: first round 197 mod 11 = 10, second round 142 mod 11 = 10:
#   never issued, whatever the last digit.
FIRST_ROUND_MAN = "900514300012"
FIRST_ROUND_WOMAN = "851225400009"
SECOND_ROUND = "900514300305"
NEVER_ISSUED_PREFIX = "90051430038"


def test_check_digit_first_round() -> None:
    assert iin_check_digit(FIRST_ROUND_MAN[:11]) == 2
    assert iin_check_digit(FIRST_ROUND_WOMAN[:11]) == 9


def test_check_digit_second_round() -> None:
    assert iin_check_digit(SECOND_ROUND[:11]) == 5


def test_check_digit_never_issued() -> None:
    assert iin_check_digit(NEVER_ISSUED_PREFIX) is None


@pytest.mark.parametrize("iin", [FIRST_ROUND_MAN, FIRST_ROUND_WOMAN, SECOND_ROUND])
def test_valid_iins(iin: str) -> None:
    assert iin_problem(iin) is None
    assert iin_is_valid(iin)


@pytest.mark.parametrize(
    ("iin", "reason"),
    [
        ("90051430001", "an IIN has 12 digits, this has 11 characters"),
        ("9005143000123", "an IIN has 12 digits, this has 13 characters"),
        ("90051430001x", "an IIN has only digits 0-9"),
        ("９００５１４３０００１２", "an IIN has only digits 0-9"),  # full-width digits
        ("901314300012", "bad birth date 901314 (YYMMDD)"),  # month 13
        ("900230300012", "bad birth date 900230 (YYMMDD)"),  # 30 February
        ("000229500012", None),  # 29.02.2000 exists (century digit 5) …
        ("000229300012", "bad birth date 000229 (YYMMDD)"),  # … 29.02.1900 does not
        ("900514000012", "digit 7 (century and sex) is 0, not 1 to 6"),
        ("900514700012", "digit 7 (century and sex) is 7, not 1 to 6"),
        ("900514300013", "bad check digit 3, expected 2"),
        ("900514300300", "bad check digit 0, expected 5"),
        (
            NEVER_ISSUED_PREFIX + "0",
            "no IIN is issued with these 11 digits (the check digit would be 10)",
        ),
    ],
)
def test_iin_problems(iin: str, reason: str | None) -> None:
    if reason is None:
        # Only the date matters here: complete the number with its own check digit.
        check = iin_check_digit(iin[:11])
        assert check is not None
        iin = iin[:11] + str(check)
    assert iin_problem(iin) == reason
    assert iin_is_valid(iin) is (reason is None)


# --- generated candidates -----------------------------------------------------------------------

PART = Part("p", {"kk": "Т"}, "bank", 5400, Blueprint("act", {"a": 1}))


def kz_exam() -> Exam:
    sites = tuple(Site(site_id, {"kk": site_id}) for site_id in ("astana", "almaty", "shymkent"))
    return Exam(
        "kz-demo",
        {"kk": "Т"},
        "kz-prosecutor",
        ("kk", "ru"),
        (PART,),
        sites,
        identity_document="iin",
    )


def ua_exam() -> Exam:
    sites = tuple(
        Site(site_id, {"uk": title})
        for site_id, title in [
            ("kyiv", "Київ"),
            ("dnipro", "Дніпро"),
            ("lviv", "Львів"),
            ("odesa", "Одеса"),
            ("kharkiv", "Харків"),
            ("uzhhorod", "Ужгородський центр"),
        ]
    )
    return Exam(
        "ua-demo",
        {"uk": "Т"},
        "ua-prosecutor",
        ("uk",),
        (PART,),
        sites,
        identity_document="passport",
    )


def test_candidates_are_deterministic_and_depend_on_the_seed() -> None:
    assert generate_candidates(kz_exam(), 50) == generate_candidates(kz_exam(), 50)
    assert generate_candidates(kz_exam(), 50, seed=1) != generate_candidates(kz_exam(), 50)


def test_ids_count_and_round_robin_sites() -> None:
    candidates = generate_candidates(kz_exam(), 7)
    assert [c.id for c in candidates] == [f"kz-demo-{n:05d}" for n in range(1, 8)]
    assert [c.site_id for c in candidates] == [
        "astana",
        "almaty",
        "shymkent",
        "astana",
        "almaty",
        "shymkent",
        "astana",
    ]
    assert {c.exam_id for c in candidates} == {"kz-demo"}


def test_a_longer_roster_starts_with_the_shorter_one() -> None:
    assert generate_candidates(ua_exam(), 40)[:25] == generate_candidates(ua_exam(), 25)


def test_zero_and_negative_counts() -> None:
    assert generate_candidates(kz_exam(), 0) == ()
    with pytest.raises(ValueError):
        generate_candidates(kz_exam(), -1)


def test_kz_candidates_have_valid_unique_iins_matching_their_sex() -> None:
    candidates = generate_candidates(kz_exam(), 3000)
    documents = [c.document for c in candidates]
    assert len(set(documents)) == len(documents)
    for candidate in candidates:
        assert iin_problem(candidate.document) is None, candidate
        surname, _given, patronymic = candidate.full_name.split()
        female = patronymic.endswith(("қызы", "овна"))
        assert female or patronymic.endswith(("ұлы", "ович")), candidate
        assert surname.endswith("а") is female, candidate
        century_digit = int(candidate.document[6])
        assert century_digit in (3, 4, 5, 6)
        assert (century_digit % 2 == 0) is female, candidate
        assert candidate.office == ""
    sexes = Counter(int(c.document[6]) % 2 for c in candidates)
    assert 1300 < sexes[0] < 1700  # both sexes, roughly half each


def test_kz_names_are_combinations_not_one_person() -> None:
    names = [c.full_name for c in generate_candidates(kz_exam(), 3000)]
    assert len(set(names)) > 2500
    assert all(
        re.fullmatch(r"[А-ЯӘҒҚҢӨҰҮҺІЁа-яәғқңөұүһіё]+( [А-ЯӘҒҚҢӨҰҮҺІЁа-яәғқңөұүһіё]+){2}", n)
        for n in names
    )


def test_ua_candidates_have_ukrainian_names_id_cards_and_offices_of_their_city() -> None:
    candidates = generate_candidates(ua_exam(), 3000)
    cities = {
        "kyiv": "міста Києва",
        "dnipro": "міста Дніпра",
        "lviv": "міста Львова",
        "odesa": "міста Одеси",
        "kharkiv": "міста Харкова",
    }
    offices_by_site: dict[str, set[str]] = {}
    for candidate in candidates:
        assert re.fullmatch(r"\d{9}", candidate.document), candidate
        _surname, _given, patronymic = candidate.full_name.split()
        assert patronymic.endswith(("ович", "йович", "івна", "ївна")), candidate
        assert not re.search("[ыэъё]", candidate.full_name)  # Ukrainian, not Russian spelling
        offices_by_site.setdefault(candidate.site_id, set()).add(candidate.office)
        if candidate.site_id in cities:
            assert candidate.office.startswith("Окружна прокуратура " + cities[candidate.site_id])
        else:
            assert candidate.office.endswith("(Ужгородський центр)")
    assert {site: len(offices) for site, offices in offices_by_site.items()} == {
        "kyiv": 4,
        "dnipro": 3,
        "lviv": 3,
        "odesa": 3,
        "kharkiv": 3,
        "uzhhorod": 3,
    }
    assert len({c.document for c in candidates}) == len(candidates)


def test_exam_without_sites_cannot_place_candidates() -> None:
    exam = Exam("x", {}, "s", ("kk",), (PART,), ())
    with pytest.raises(ValueError, match="no sites"):
        generate_candidates(exam, 1)
