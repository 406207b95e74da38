"""Small exams on the bundled demo banks, so the pages show real Kazakh, Russian and Ukrainian
items while a whole test takes a minute, not ninety."""

from __future__ import annotations

from pathlib import Path

KZ_EXAM = """
[exam]
id = "{exam_id}"
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
admission = "{admission}"
identity_document = "iin"
recording = "{recording}"

[exam.title]
kk = "Заңнаманы білуге компьютерлік тестілеу (сынақ)"
ru = "Компьютерное тестирование на знание законодательства (проба)"

[[parts]]
id = "legislation"
title = {{ kk = "Заңнаманы білуге арналған тест", ru = "Тест на знание законодательства" }}
bank = "kz-legislation"
{time}
[parts.blueprint]
dimension = "act"
[parts.blueprint.counts]
prosecutor-office = 3
anti-corruption = 3
ethics-code = 2
constitution = 1
criminal-procedure = 1

[[sites]]
id = "astana-gpo"
title = {{ kk = "Бас прокуратура (Астана)", ru = "Генеральная прокуратура (Астана)" }}

[[sites]]
id = "almaty-city"
title = {{ kk = "Алматы қаласының прокуратурасы", ru = "Прокуратура города Алматы" }}

{staff}
[candidates]
generate = {candidates}
"""

STAFF = """
[[staff]]
login = "proctor-astana"
name = "Ерлан Сапарұлы Тоқтаров"
role = "proctor"
sites = ["astana-gpo"]

[[staff]]
login = "observer-astana"
name = "Мадина Асқарқызы Бекова"
role = "observer"
sites = ["astana-gpo"]
"""

UA_EXAM = """
[exam]
id = "b-ua"
title = { uk = "Тестування кандидатів на посади прокурорів (пробне)" }
scheme = "ua-prosecutor"
languages = ["uk"]
admission = "self"
identity_document = "passport"

[[parts]]
id = "professional"
title = { uk = "Тестування на знання законодавства (професійний тест)" }
bank = "ua-professional"
minutes = 20
[parts.blueprint]
dimension = "topic"
[parts.blueprint.counts]
constitution = 2
prosecutor-office = 2
criminal-procedure = 2
criminal-law = 2
anti-corruption = 2

[[parts]]
id = "aptitude"
title = { uk = "Тестування загальних здібностей" }
bank = "ua-aptitude"
minutes = 10
[parts.blueprint]
dimension = "category"
counts = { logical = 3, verbal = 3, numerical = 3 }

[[sites]]
id = "kyiv"
title = { uk = "Регіональний центр тестування в місті Києві" }

[candidates]
generate = 10
"""

HALL_EXAM = """
[exam]
id = "b-kz-hall"
title = { kk = "Тестілеу залы (сынақ)", ru = "Зал тестирования (проба)" }
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
admission = "self"
identity_document = "iin"

[[parts]]
id = "legislation"
title = { kk = "Заңнаманы білуге арналған тест", ru = "Тест на знание законодательства" }
bank = "kz-legislation"
minutes = 30
[parts.blueprint]
dimension = "act"
[parts.blueprint.counts]
prosecutor-office = 3
anti-corruption = 3
ethics-code = 2
constitution = 1
criminal-procedure = 1

[[sites]]
id = "almaty-city"
title = { kk = "Алматы қаласының прокуратурасы", ru = "Прокуратура города Алматы" }

[[staff]]
login = "proctor-almaty"
name = "Гүлнар Серікқызы Әбенова"
role = "proctor"
sites = ["almaty-city"]

[candidates]
generate = 100
"""

EXAMS = {
    # A whole KZ part: 10 items in 30 minutes, Kazakh or Russian.
    "b-kz": KZ_EXAM.format(
        exam_id="b-kz",
        admission="self",
        recording="required",
        time="minutes = 30",
        candidates=10,
        staff="",
    ),
    # The same, where a candidate may sit without camera and microphone.
    "b-kz-unrecorded": KZ_EXAM.format(
        exam_id="b-kz-unrecorded",
        admission="self",
        recording="optional",
        time="minutes = 30",
        candidates=4,
        staff="",
    ),
    # Seconds long, with one warning, for the deadline.
    "b-kz-short": KZ_EXAM.format(
        exam_id="b-kz-short",
        admission="self",
        recording="required",
        time="seconds = 14\nwarnings_seconds = [8]",
        candidates=10,
        staff="",
    ),
    # Every sitting waits for a proctor's identity check and admission.
    "b-kz-proctored": KZ_EXAM.format(
        exam_id="b-kz-proctored",
        admission="proctor",
        recording="required",
        time="minutes = 30",
        candidates=12,
        staff=STAFF,
    ),
    "b-ua": UA_EXAM,
    # A hundred candidates at one site, for the dashboard under load.
    "b-kz-hall": HALL_EXAM,
}


def write_browser_exams(root: Path) -> Path:
    """The exams folder; banks come from engine.resources.bundled_banks_dir()."""
    exams = root / "browser-exams"
    exams.mkdir(parents=True, exist_ok=True)
    for exam_id, text in EXAMS.items():
        (exams / f"{exam_id}.toml").write_text(text, encoding="utf-8")
    return exams
