"""Generate the numerical and logical items of the UA general aptitude demo bank.

Why this script exists: the demo bank in banks/ua-aptitude needs well over a hundred numerical and
logical items, and a hand-written arithmetic item with a wrong key is worse than no item. So every
numerical and logical item here is built from random parameters, its key is COMPUTED, and its
distractors are computed as plausible mistakes (a wrong operation, an off-by-one step, a slipped
decimal point, a rounding) and checked to be distinct from the key and from each other. The verbal
items (banks/ua-aptitude/items-verbal.toml) are written by hand.

The output is deterministic (a fixed seed): rerunning the script rewrites the same two files,
items-numerical.toml and items-logical.toml. Change this script, not the files it writes.

Run from the repository root:

    python3 scripts/generate_aptitude_bank.py
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

SEED = 20260111
REPO_ROOT = Path(__file__).resolve().parent.parent
BANK_DIR = REPO_ROOT / "banks" / "ua-aptitude"
N_OPTIONS = 4
NBSP = "\u00a0"
APOS = "\u2019"  # the Ukrainian apostrophe, as in «п’ятниця»

Number = int | Fraction


class Retry(Exception):
    """Raised by a template when its random parameters do not give a good item."""


@dataclass(frozen=True)
class Draft:
    """An item before its key position is chosen."""

    stem: str
    key: str
    distractors: tuple[str, ...]


@dataclass(frozen=True)
class Item:
    """An item as written to the bank: `key` counts from 1."""

    id: str
    category: str
    stem: str
    options: tuple[str, ...]
    key: int


Template = Callable[[random.Random], Draft]


# ---------------------------------------------------------------------------------------------
# Helpers: numbers, Ukrainian plurals, drafts
# ---------------------------------------------------------------------------------------------


def fmt(value: Number | Decimal | None, unit: str = "", *, positive: bool = True) -> str | None:
    """Format a number the Ukrainian way (decimal comma, grouped thousands), or None.

    None means the value cannot be an option: not positive (when `positive`), or not a decimal
    with at most two digits after the comma.
    """
    if value is None:
        return None
    x = Fraction(value)
    if positive and x <= 0:
        return None
    scaled = x * 100
    if scaled.denominator != 1:
        return None
    cents = abs(scaled.numerator)
    whole, frac = divmod(cents, 100)
    text = f"{whole:,}".replace(",", NBSP) if whole >= 10_000 else str(whole)
    if frac:
        text += "," + f"{frac:02d}".rstrip("0")
    if x < 0:
        text = "\u2212" + text
    return f"{text}{NBSP}{unit}" if unit else text


def plural(n: int, one: str, few: str, many: str) -> str:
    """The form of a Ukrainian noun after the numeral n: 1 день, 2 дні, 5 днів."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def years(n: int) -> str:
    return f"{n} {plural(n, 'рік', 'роки', 'років')}"


def days(n: int) -> str:
    return f"{n} {plural(n, 'день', 'дні', 'днів')}"


def percent(p: Number) -> str:
    text = fmt(p, positive=False)
    assert text is not None
    return f"{text}{NBSP}%"


def draft(stem: str, key: str | None, candidates: Iterable[str | None]) -> Draft:
    """Take the first N_OPTIONS - 1 usable candidates, distinct from the key and each other."""
    if key is None:
        raise Retry
    chosen: list[str] = []
    for candidate in candidates:
        if candidate is None or not candidate.strip():
            continue
        if candidate == key or candidate in chosen:
            continue
        chosen.append(candidate)
        if len(chosen) == N_OPTIONS - 1:
            return Draft(stem, key, tuple(chosen))
    raise Retry


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------------------------
# Numerical templates
# ---------------------------------------------------------------------------------------------


def num_percent_of(rng: random.Random) -> Draft:
    p = rng.choice([5, 12, 15, 20, 25, 30, 35, 40, 45, 60, 75])
    base = rng.randrange(60, 1000, 20)
    if base * p % 100:
        raise Retry
    key = Fraction(base * p, 100)
    stem = f"Скільки становить {percent(p)} від числа {base}?"
    return draft(stem, fmt(key), [fmt(key * 10), fmt(base - key), fmt(key / 10), fmt(key + p)])


DISCOUNT_GOODS = [
    ("Куртка", "коштувала"),
    ("Рюкзак", "коштував"),
    ("Пальто", "коштувало"),
    ("Пилосос", "коштував"),
    ("Сукня", "коштувала"),
    ("Велосипед", "коштував"),
    ("Крісло", "коштувало"),
    ("Кавоварка", "коштувала"),
]


def num_discount(rng: random.Random) -> Draft:
    good, cost = rng.choice(DISCOUNT_GOODS)
    price = rng.randrange(400, 4100, 100)
    p = rng.choice([10, 15, 20, 25, 30, 35, 40])
    off = Fraction(price * p, 100)
    key = price - off
    stem = (
        f"{good} {cost} {price} грн. Під час розпродажу ціну знизили на {percent(p)}. "
        f"Скільки тепер коштує {good.lower()}?"
    )
    return draft(
        stem,
        fmt(key, "грн"),
        [fmt(off, "грн"), fmt(price + off, "грн"), fmt(price - p, "грн"), fmt(key - off, "грн")],
    )


def num_successive(rng: random.Random) -> Draft:
    price = rng.randrange(200, 2100, 100)
    up = rng.choice([10, 20, 25, 30, 40, 50])
    down = rng.choice([10, 20, 25, 30, 40, 50])
    key = Fraction(price * (100 + up) * (100 - down), 10_000)
    stem = (
        f"Ціну товару спочатку підвищили на {percent(up)}, а згодом знизили на {percent(down)}. "
        f"Скільки коштує товар тепер, якщо до змін він коштував {price} грн?"
    )
    return draft(
        stem,
        fmt(key, "грн"),
        [
            fmt(Fraction(price * (100 + up - down), 100), "грн"),  # added the percentages
            fmt(Fraction(price * (100 - down), 100), "грн"),  # only the last change
            fmt(Fraction(price * (100 + up), 100), "грн"),  # only the first change
            fmt(Fraction(price * (100 - up) * (100 - down), 10_000), "грн"),
        ],
    )


CHANGE_SUBJECTS = [
    ("кількість відвідувачів музею", "кількість відвідувачів", ""),
    ("кількість учнів ліцею", "кількість учнів", ""),
    ("ціна квитка на концерт", "ціна квитка", "грн"),
    ("кількість підписників блогу", "кількість підписників", ""),
    ("середня місячна плата за оренду гаража", "плата за оренду", "грн"),
]


def num_percent_change(rng: random.Random) -> Draft:
    subject, short, unit = rng.choice(CHANGE_SUBJECTS)
    old = rng.choice([200, 250, 300, 400, 500, 600, 800, 1000, 1200])
    grow = rng.random() < 0.5
    p = rng.choice([10, 20, 25, 30, 40, 50, 60, 75] if grow else [10, 20, 25, 30, 40, 50, 60])
    if old * p % 100:
        raise Retry
    delta = old * p // 100
    new = old + delta if grow else old - delta
    verb = "зросла" if grow else "зменшилася"
    u = f"{NBSP}{unit}" if unit else ""
    stem = (
        f"За рік {subject} {verb} з {fmt(old)}{u} до {fmt(new)}{u}. "
        f"На скільки відсотків {verb} {short}?"
    )
    return draft(
        stem,
        percent(p),
        [
            percent(round(Fraction(delta * 100, new))),  # counted from the new value
            percent(Fraction(new * 100, old)),  # the ratio instead of the change
            percent(delta) if delta <= 300 else None,  # the absolute change
            percent(p + 10),
            percent(p - 5),
        ],
    )


# (stem template, noun forms after a numeral, plausible sizes of the whole)
REST_CONTEXTS = [
    (
        "У школі навчаються {n} {noun}, {p} з них — хлопці. Скільки в школі дівчат?",
        ("учень", "учні", "учнів"),
        [200, 240, 300, 360, 400, 500, 600, 800],
    ),
    (
        "На підприємстві працює {n} {noun}, {p} з них — жінки. Скільки чоловіків працює "
        "на підприємстві?",
        ("працівник", "працівники", "працівників"),
        [40, 60, 80, 120, 150, 200, 250, 300],
    ),
    (
        "На складі {n} {noun}, {p} з них порожні. Скільки ящиків на складі заповнено?",
        ("ящик", "ящики", "ящиків"),
        [40, 60, 80, 120, 160, 200, 240],
    ),
    (
        "У саду ростуть {n} {noun}, {p} з них — яблуні. Скільки в саду інших дерев?",
        ("дерево", "дерева", "дерев"),
        [20, 40, 60, 80, 120],
    ),
]


def num_percent_rest(rng: random.Random) -> Draft:
    template, forms, sizes = rng.choice(REST_CONTEXTS)
    n = rng.choice(sizes)
    p = rng.choice([10, 15, 20, 25, 30, 35, 40, 45, 55, 60, 65, 70])
    if n * p % 100:
        raise Retry
    part = n * p // 100
    key = n - part
    stem = template.format(n=n, noun=plural(n, *forms), p=percent(p))
    return draft(stem, fmt(key), [fmt(part), fmt(100 - p), fmt(n - p), fmt(key + 10)])


def num_direct(rng: random.Random) -> Draft:
    kind = rng.randrange(4)
    if kind == 0:
        fruit = rng.choice(["яблук", "груш", "помідорів", "черешень", "слив"])
        n1, n2 = rng.sample(range(2, 11), 2)
        unit = rng.randrange(15, 95, 5)
        c1 = unit * n1
        stem = (
            f"За {n1} кг {fruit} заплатили {c1} грн. Скільки коштують {n2} кг таких самих {fruit}?"
        )
        return draft(
            stem,
            fmt(unit * n2, "грн"),
            [
                fmt(unit * (n2 + 1), "грн"),
                fmt(unit * (n2 - 1), "грн"),
                fmt(round(Fraction(c1 * n1, n2)), "грн"),  # inverse proportion
                fmt(c1 * n2, "грн"),
            ],
        )
    if kind == 1:
        t1, t2 = rng.sample(range(2, 13), 2)
        rate = rng.randrange(8, 31)
        pages = rate * t1
        stem = (
            f"Принтер друкує {pages} {plural(pages, 'сторінку', 'сторінки', 'сторінок')} "
            f"за {t1} {plural(t1, 'хвилину', 'хвилини', 'хвилин')}. Скільки сторінок він "
            f"надрукує за {t2} {plural(t2, 'хвилину', 'хвилини', 'хвилин')}, якщо друкує з тією "
            f"самою швидкістю?"
        )
        return draft(
            stem,
            fmt(rate * t2),
            [
                fmt(rate * (t2 + 1)),
                fmt(rate * (t2 - 1)),
                fmt(pages + t2 - t1),  # added the difference in minutes
                fmt(round(Fraction(pages * t1, t2))),
            ],
        )
    if kind == 2:
        per_loaf = Fraction(rng.choice([2, 3, 4, 5, 6]), 10)  # kilograms of flour per loaf
        b1, b2 = rng.sample(range(5, 41, 5), 2)
        m1 = per_loaf * b1
        key = per_loaf * b2
        loaves = ("буханець", "буханці", "буханців")
        stem = (
            f"Щоб спекти {b1} {plural(b1, *loaves)} хліба, потрібно {fmt(m1)} кг борошна. "
            f"Скільки кілограмів борошна потрібно, щоб спекти {b2} {plural(b2, *loaves)} "
            f"за тим самим рецептом?"
        )
        return draft(
            stem,
            fmt(key, "кг"),
            [
                fmt(key + per_loaf * 5, "кг"),
                fmt(key - per_loaf * 5, "кг"),
                fmt(m1 + b2 - b1, "кг"),
                fmt(key * 10, "кг"),
            ],
        )
    litres = rng.choice([5, 6, 7, 8, 9, 11, 12])
    dist = rng.randrange(150, 1001, 50)
    key = Fraction(litres * dist, 100)
    stem = (
        f"Автомобіль витрачає {litres} л пального на 100 км. "
        f"Скільки літрів пального він витратить на {dist} км?"
    )
    return draft(
        stem,
        fmt(key, "л"),
        [fmt(key + litres, "л"), fmt(key - litres, "л"), fmt(key * 10, "л"), fmt(key / 10, "л")],
    )


def num_inverse(rng: random.Random) -> Draft:
    n1, n2 = rng.sample(range(2, 13), 2)
    total = n1 * rng.randrange(4, 31)
    if total % n2:
        raise Retry
    t1 = total // n1
    key = total // n2
    wrong_direct = round(Fraction(t1 * n2, n1))
    if rng.random() < 0.5:
        # «з N робітників»: after «з» the noun is genitive plural for every N from 2 to 12.
        stem = (
            f"Бригада з {n1} робітників може виконати замовлення за {days(t1)}. "
            f"За скільки днів виконає це замовлення бригада з {n2} робітників, "
            f"якщо всі працюють однаково продуктивно?"
        )
        return draft(
            stem,
            days(key),
            [
                days(wrong_direct) if wrong_direct > 0 else None,
                days(t1 + n1 - n2) if t1 + n1 - n2 > 0 else None,
                days(key + 1),
                days(key - 1) if key > 1 else None,
            ],
        )
    pumps1 = plural(n1, "однаковий насос", "однакові насоси", "однакових насосів")
    pumps2 = plural(n2, "такий насос", "такі насоси", "таких насосів")
    stem = (
        f"Басейн можна спорожнити за {t1} год, якщо одночасно працюють {n1} {pumps1}. "
        f"За скільки годин його спорожнять {n2} {pumps2}?"
    )
    return draft(
        stem,
        fmt(key, "год"),
        [
            fmt(wrong_direct, "год"),
            fmt(t1 + n1 - n2, "год"),
            fmt(key + 1, "год"),
            fmt(key - 1, "год"),
        ],
    )


# (name, gender) — fictional first names only
MALE_NAMES = ["Андрій", "Богдан", "Дмитро", "Тарас", "Марко", "Петро", "Назар", "Остап"]
FEMALE_NAMES = ["Оксана", "Ірина", "Олена", "Галина", "Віра", "Соломія", "Леся", "Зоряна"]

STATIONERY = [
    ("зошит", "зошити", "зошитів"),
    ("олівець", "олівці", "олівців"),
    ("блокнот", "блокноти", "блокнотів"),
    ("булочку", "булочки", "булочок"),
    ("маркер", "маркери", "маркерів"),
]
EXTRAS = ["ручку", "пенал", "лінійку", "пляшку води", "альбом для малювання"]


def num_purchase(rng: random.Random) -> Draft:
    female = rng.random() < 0.5
    name = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
    end = "ла" if female else "в"
    forms = rng.choice(STATIONERY)
    k = rng.randrange(2, 7)
    price = rng.randrange(8, 46)
    extra = rng.choice(EXTRAS)
    extra_price = rng.randrange(12, 80)
    total = k * price + extra_price
    bill = next(b for b in (100, 200, 500) if b > total + 10)
    key = bill - total
    stem = (
        f"{name} купи{end} {k} {plural(k, *forms)} по {price} грн і {extra} за "
        f"{extra_price} грн. Скільки решти {'вона' if female else 'він'} отрима{end}, "
        f"якщо да{end} касирові {bill} грн?"
    )
    return draft(
        stem,
        fmt(key, "грн"),
        [
            fmt(bill - (price + extra_price), "грн"),  # forgot to multiply
            fmt(total, "грн"),  # the cost, not the change
            fmt(key + price, "грн"),  # one item fewer
            fmt(key - price, "грн"),  # one item more
            fmt(bill - k * price, "грн"),
        ],
    )


# A vehicle and the speeds (km/h) it plausibly keeps.
VEHICLES = [
    ("Велосипедист", [12, 15, 16, 18, 20, 24, 25]),
    ("Автомобіль", [50, 60, 75, 80, 90, 100, 120]),
    ("Потяг", [60, 75, 80, 90, 100, 120]),
    ("Мотоцикліст", [40, 48, 50, 60, 75, 80, 90]),
    ("Автобус", [40, 48, 50, 60, 75, 80]),
]


def num_speed_time(rng: random.Random) -> Draft:
    vehicle, speeds = rng.choice(VEHICLES)
    v = rng.choice(speeds)
    dist = rng.randrange(2, v)
    if dist * 60 % v or dist * 100 % v:
        raise Retry
    key = dist * 60 // v
    stem = (
        f"{vehicle} рухається зі сталою швидкістю {v} км/год. "
        f"За скільки хвилин він подолає {dist} км?"
    )
    return draft(
        stem,
        fmt(key, "хв"),
        [
            fmt(dist * 100 // v, "хв"),  # read 0,75 год as 75 хв
            fmt(round(Fraction(v * 60, dist)), "хв"),  # divided the wrong way
            fmt(key + 10, "хв"),
            fmt(key - 5, "хв"),
        ],
    )


def num_average_speed(rng: random.Random) -> Draft:
    v1, v2 = rng.sample(range(40, 130, 10), 2)
    key = Fraction(2 * v1 * v2, v1 + v2)
    if key.denominator != 1:
        raise Retry
    vehicle, top_speed = rng.choice([("Автомобіль", 130), ("Автобус", 90), ("Мотоцикліст", 120)])
    if max(v1, v2) > top_speed:
        raise Retry
    stem = (
        f"{vehicle} їхав з одного міста до іншого зі швидкістю {v1} км/год, а назад тією "
        f"самою дорогою — зі швидкістю {v2} км/год. Якою була його середня швидкість "
        f"на всьому шляху?"
    )
    return draft(
        stem,
        fmt(key, "км/год"),
        [
            fmt(Fraction(v1 + v2, 2), "км/год"),  # the mean of the two speeds
            fmt(round(math.sqrt(v1 * v2)), "км/год"),
            fmt(min(v1, v2), "км/год"),
            fmt(key - 2, "км/год"),
        ],
    )


def num_series(rng: random.Random) -> Draft:
    geometric = rng.random() < 0.4
    if geometric:
        a = rng.randrange(1, 8)
        r = rng.choice([2, 3])
        terms = [a * r**i for i in range(5)]
    else:
        a = rng.randrange(2, 60)
        d = rng.choice([-7, -6, -5, -4, -3, 3, 4, 5, 6, 7, 8, 9, 11, 12, 15])
        terms = [a + d * i for i in range(5)]
        if min(terms) <= 0:
            raise Retry
    gap = rng.randrange(1, 4)
    key = terms[gap]
    shown = [str(t) if i != gap else "?" for i, t in enumerate(terms)]
    stem = f"Яке число пропущено в ряду: {', '.join(shown)}?"
    prev, nxt = terms[gap - 1], terms[gap + 1]
    if geometric:
        cands = [
            fmt(prev + (prev - terms[gap - 2])) if gap >= 2 else fmt(prev + prev - 1),
            fmt((prev + nxt) // 2),  # the mean of the neighbours
            fmt(key + r),
            fmt(key - r),
        ]
    else:
        offsets = [-2, -1, 1, 2, 3]
        rng.shuffle(offsets)
        cands = [fmt(key + o) for o in offsets]
    return draft(stem, fmt(key), cands)


DATA_CONTEXTS = [
    ("Кур’єр за робочий тиждень доставив таку кількість замовлень", "замовлень", "доставляв"),
    ("Кав’ярня за робочий тиждень продала таку кількість чашок кави", "чашок кави", "продавала"),
    ("Бібліотека за робочий тиждень видала таку кількість книжок", "книжок", "видавала"),
    (
        "Майстерня за робочий тиждень відремонтувала таку кількість велосипедів",
        "велосипедів",
        "ремонтувала",
    ),
]
WEEKDAYS_NOM = ["понеділок", "вівторок", "середа", "четвер", f"п{APOS}ятниця"]
WEEKDAYS_ACC = ["понеділок", "вівторок", "середу", "четвер", f"п{APOS}ятницю"]


def data_table(values: Sequence[int]) -> str:
    return ", ".join(f"{d} — {v}" for d, v in zip(WEEKDAYS_NOM, values, strict=True))


def num_data_average(rng: random.Random) -> Draft:
    intro, noun, verb = rng.choice(DATA_CONTEXTS)
    values = rng.sample(range(12, 70), 5)
    if sum(values) % 5:
        raise Retry
    key = sum(values) // 5
    subject = intro.split()[0].lower()
    who = "він" if subject == f"кур{APOS}єр" else subject
    in_ = "в" if noun[-1] in "аеєиіїоуюя" else "у"  # «кави в середньому», «книжок у середньому»
    stem = f"{intro}: {data_table(values)}. Скільки {noun} {in_} середньому {who} {verb} за день?"
    median = sorted(values)[2]
    return draft(
        stem,
        fmt(key),
        [
            fmt(median),
            fmt(round(Fraction(sum(values), 4))),  # divided by the wrong count
            fmt(max(values) - min(values)),
            fmt(key + 2),
        ],
    )


def num_data_share(rng: random.Random) -> Draft:
    intro, noun, _ = rng.choice(DATA_CONTEXTS)
    total = rng.choice([100, 200, 400])
    values = rng.sample(range(total // 10, total * 3 // 10), 4)
    values.append(total - sum(values))
    rng.shuffle(values)
    if min(values) < total // 20 or len(set(values)) != 5:
        raise Retry
    day = rng.randrange(5)
    v = values[day]
    if v * 100 % total:
        raise Retry
    key = v * 100 // total
    stem = (
        f"{intro}: {data_table(values)}. "
        f"Який відсоток усіх {noun} за тиждень припадає на {WEEKDAYS_ACC[day]}?"
    )
    return draft(
        stem,
        percent(key),
        [
            percent(v) if v < 100 else None,  # the count read as a percentage
            percent(round(Fraction(v * 100, total - v))),  # compared with the rest
            percent(20),  # an even split
            percent(key + 5),
        ],
    )


def num_data_range(rng: random.Random) -> Draft:
    intro, _, _ = rng.choice(DATA_CONTEXTS)
    values = rng.sample(range(10, 80), 5)
    s = sorted(values)
    key = s[-1] - s[0]
    stem = (
        f"{intro}: {data_table(values)}. На скільки найбільший денний показник перевищує найменший?"
    )
    return draft(
        stem,
        fmt(key),
        [fmt(s[-1] - s[1]), fmt(s[-2] - s[0]), fmt(s[-1] - s[2]), fmt(key + 1)],
    )


# (target noun, genitive plural; source unit; factor; wrong factors people use)
CONVERSIONS: list[tuple[str, str, Fraction, list[Fraction]]] = [
    ("метрів", "км", Fraction(1000), [Fraction(100), Fraction(10_000)]),
    ("грамів", "кг", Fraction(1000), [Fraction(100), Fraction(10_000)]),
    ("хвилин", "год", Fraction(60), [Fraction(100), Fraction(600)]),
    ("секунд", "хв", Fraction(60), [Fraction(100), Fraction(600)]),
    ("секунд", "год", Fraction(3600), [Fraction(60), Fraction(6000)]),
    ("квадратних сантиметрів", "м²", Fraction(10_000), [Fraction(100), Fraction(1000)]),
    ("мілілітрів", "л", Fraction(1000), [Fraction(100), Fraction(10)]),
    ("кілограмів", "т", Fraction(1000), [Fraction(100), Fraction(10)]),
    ("сантиметрів", "м", Fraction(100), [Fraction(10), Fraction(1000)]),
    ("кілометрів", "м", Fraction(1, 1000), [Fraction(1, 100), Fraction(1, 10)]),
    ("годин", "хв", Fraction(1, 60), [Fraction(1, 100), Fraction(1, 10)]),
    ("літрів", "мл", Fraction(1, 1000), [Fraction(1, 100), Fraction(1, 10)]),
]


def num_units(rng: random.Random) -> Draft:
    target, unit, factor, wrong = rng.choice(CONVERSIONS)
    if factor >= 1:
        value = Fraction(rng.choice([5, 12, 15, 25, 32, 45, 75, 125, 250]), rng.choice([10, 100]))
        if value.denominator == 1 or value > 10:
            raise Retry
    elif unit == "хв":
        value = Fraction(rng.choice([45, 75, 90, 105, 135, 150, 210, 270]))
    else:
        value = Fraction(rng.randrange(1, 20)) / factor * Fraction(rng.choice([1, 5]), 10)
    key = value * factor
    if (unit != "хв" and key.denominator != 1) or (value.denominator != 1 and factor < 1):
        raise Retry
    stem = f"Скільки {target} у {fmt(value)}{NBSP}{unit}?"
    return draft(
        stem,
        fmt(key),
        [fmt(value * w) for w in wrong] + [fmt(key * 10), fmt(key / 10)],
    )


def num_ratio(rng: random.Random) -> Draft:
    a, b = sorted(rng.sample(range(1, 10), 2))
    if math.gcd(a, b) != 1:
        raise Retry
    unit = rng.choice([500, 1000, 1500, 2000, 2500, 4000])
    total = (a + b) * unit
    key = b * unit
    stem = (
        f"Двоє партнерів поділили прибуток {fmt(total)} грн у співвідношенні {a} : {b}. "
        f"Скільки гривень отримав той, чия частка більша?"
    )
    return draft(
        stem,
        fmt(key, "грн"),
        [
            fmt(a * unit, "грн"),  # the smaller share
            fmt((b - a) * unit, "грн"),  # the difference of the shares
            fmt(Fraction(total, 2), "грн"),
            fmt(key + unit, "грн"),
        ],
    )


def num_interest(rng: random.Random) -> Draft:
    principal = rng.choice([5000, 8000, 10_000, 12_000, 15_000, 20_000, 25_000, 40_000])
    rate = rng.choice([5, 6, 8, 10, 12, 15])
    term = rng.randrange(2, 6)
    interest = Fraction(principal * rate * term, 100)
    key = principal + interest
    compound = round(principal * Fraction(100 + rate, 100) ** term)
    stem = (
        f"Вкладник поклав на депозит {fmt(principal)} грн під {percent(rate)} річних. "
        f"Відсотки щороку нараховують лише на початкову суму. Скільки грошей буде на рахунку "
        f"через {years(term)}?"
    )
    return draft(
        stem,
        fmt(key, "грн"),
        [
            fmt(interest, "грн"),  # the interest alone
            fmt(compound, "грн"),  # compound interest
            fmt(principal + Fraction(principal * rate, 100), "грн"),  # one year only
            fmt(key + Fraction(principal * rate, 100), "грн"),
        ],
    )


def num_work_together(rng: random.Random) -> Draft:
    a, b = sorted(rng.sample([2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 15, 18, 20, 24, 28, 30, 36], 2))
    key = Fraction(a * b, a + b)
    if key.denominator != 1:
        raise Retry
    if rng.random() < 0.5:
        stem = (
            f"Перша труба наповнює басейн за {a} год, а друга — за {b} год. За скільки годин "
            f"наповнять басейн обидві труби, якщо працюватимуть одночасно?"
        )
    else:
        stem = (
            f"Майстер виконує замовлення за {a} год, а його учень — за {b} год. За скільки "
            f"годин вони виконають це замовлення, якщо працюватимуть разом?"
        )
    return draft(
        stem,
        fmt(key, "год"),
        [
            fmt(Fraction(a + b, 2), "год"),  # the mean of the two times
            fmt(b - a, "год"),
            fmt(a + b, "год"),
            fmt(key + 1, "год"),
        ],
    )


def num_age(rng: random.Random) -> Draft:
    k = rng.choice([2, 3, 4])
    times = {2: "вдвічі", 3: "втричі", 4: "вчетверо"}[k]
    gap = rng.randrange(18, 41)
    later = rng.randrange(2, 11)
    if gap % (k - 1):
        raise Retry
    child = gap // (k - 1) - later
    if child < 2:
        raise Retry
    if rng.random() < 0.5:
        parent, older, child_acc, child_dat = "Мати", "старша", "доньку", "доньці"
    else:
        parent, older, child_acc, child_dat = "Батько", "старший", "сина", "синові"
    stem = (
        f"{parent} {older} за {child_acc} на {years(gap)}. Через {years(later)} "
        f"{parent.lower()} буде {times} {older} за {child_acc}. "
        f"Скільки років {child_dat} зараз?"
    )
    return draft(
        stem,
        years(child),
        [
            years(child + later),  # the age in the future
            years(child + gap),  # the parent's age
            years(child - 1) if child > 2 else None,
            years(child + 2),
        ],
    )


NUMERICAL_PLAN: list[tuple[Template, int]] = [
    (num_percent_of, 3),
    (num_discount, 4),
    (num_successive, 3),
    (num_percent_change, 4),
    (num_percent_rest, 3),
    (num_direct, 4),
    (num_inverse, 4),
    (num_purchase, 4),
    (num_speed_time, 3),
    (num_average_speed, 3),
    (num_series, 4),
    (num_data_average, 3),
    (num_data_share, 3),
    (num_data_range, 2),
    (num_units, 6),
    (num_ratio, 3),
    (num_interest, 3),
    (num_work_together, 3),
    (num_age, 2),
]


# ---------------------------------------------------------------------------------------------
# Logical templates
# ---------------------------------------------------------------------------------------------


def seq_growing_diff(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, d, s = rng.randrange(1, 21), rng.randrange(1, 6), rng.randrange(1, 4)
    terms = [a]
    for i in range(5):
        terms.append(terms[-1] + d + s * i)
    shown, key = terms[:5], terms[5]
    last_diff = shown[-1] - shown[-2]
    return shown, key, [shown[-1] + last_diff, key + s, key + 1, key - 1]


def seq_mul_add(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, m, c = rng.randrange(1, 7), rng.choice([2, 3]), rng.randrange(1, 6)
    terms = [a]
    for i in range(6):
        terms.append(terms[-1] * m if i % 2 == 0 else terms[-1] + c)
    shown, key = terms[:6], terms[6]
    if key > 999:
        raise Retry
    return shown, key, [shown[-1] + c, shown[-1] * m + c, key + c, key - 1]


def seq_double_shift(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, c = rng.randrange(2, 8), rng.choice([-3, -2, -1, 1, 2, 3])
    terms = [a]
    for _ in range(5):
        terms.append(2 * terms[-1] + c)
    if min(terms) <= 0 or len(set(terms)) < 6:
        raise Retry
    shown, key = terms[:5], terms[5]
    return shown, key, [2 * shown[-1], 2 * shown[-1] - c, shown[-1] + (shown[-1] - shown[-2])]


def seq_fibonacci(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, b = rng.randrange(1, 10), rng.randrange(1, 10)
    terms = [a, b]
    for _ in range(5):
        terms.append(terms[-1] + terms[-2])
    shown, key = terms[:6], terms[6]
    return shown, key, [shown[-1] + (shown[-1] - shown[-2]), 2 * shown[-1], key + 1, key - 1]


def seq_squares(rng: random.Random) -> tuple[list[int], int, list[int]]:
    n0, c = rng.randrange(1, 7), rng.choice([-1, 1, 2, 3, 4, 5])
    terms = [(n0 + i) ** 2 + c for i in range(6)]
    if min(terms) <= 0:
        raise Retry
    shown, key = terms[:5], terms[5]
    return shown, key, [key - c, shown[-1] + (shown[-1] - shown[-2]), key + 2, key - 2]


def seq_interleaved(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, p = rng.randrange(1, 11), rng.randrange(2, 6)
    b, q = rng.randrange(30, 61), rng.randrange(2, 7)
    up = [a + p * i for i in range(5)]
    down = [b - q * i for i in range(5)]
    merged = [x for pair in zip(up, down, strict=True) for x in pair]
    count = rng.choice([6, 7])
    shown, key = merged[:count], merged[count]
    other = merged[count + 1]
    step = p if count % 2 == 0 else -q
    return shown, key, [other, shown[-1] + (shown[-1] - shown[-2]), key + step, key + 1, key - 1]


def seq_doubling_diff(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, d = rng.randrange(1, 11), rng.randrange(1, 4)
    terms = [a]
    for i in range(5):
        terms.append(terms[-1] + d * 2**i)
    shown, key = terms[:5], terms[5]
    return shown, key, [shown[-1] + (shown[-1] - shown[-2]), 2 * shown[-1], key - 1, key + d]


def seq_shrinking(rng: random.Random) -> tuple[list[int], int, list[int]]:
    a, k = rng.randrange(60, 151), rng.randrange(1, 4)
    terms = [a]
    for i in range(1, 7):
        terms.append(terms[-1] - k * i)
    shown, key = terms[:6], terms[6]
    return shown, key, [shown[-1] - (shown[-2] - shown[-1]), key - k, key + 1, key - 1]


SEQUENCE_RULES = [
    seq_growing_diff,
    seq_mul_add,
    seq_double_shift,
    seq_fibonacci,
    seq_squares,
    seq_interleaved,
    seq_doubling_diff,
    seq_shrinking,
]


def rotating(variants: Sequence[Template], name: str) -> Template:
    """One template that takes its variants in turn, so the kinds of item are spread evenly."""
    counter = {"next": 0}

    def template(rng: random.Random) -> Draft:
        made = variants[counter["next"] % len(variants)](rng)
        counter["next"] += 1  # only after a success: a Retry tries the same variant again
        return made

    template.__name__ = name
    return template


def sequence_variant(rule: Callable[[random.Random], tuple[list[int], int, list[int]]]) -> Template:
    def template(rng: random.Random) -> Draft:
        shown, key, cands = rule(rng)
        stem = f"Яке число має бути наступним у ряду: {', '.join(map(str, shown))}, …?"
        return draft(stem, fmt(key), [fmt(c) for c in cands])

    return template


ALPHABET = "АБВГҐДЕЄЖЗИІЇЙКЛМНОПРСТУФХЦЧШЩЬЮЯ"
# Letters from Д to Щ only: a row that never reaches Ґ or Ь has one answer even for someone
# who forgets either of them.
SAFE_LO, SAFE_HI = ALPHABET.index("Д"), ALPHABET.index("Щ")


def letter(i: int) -> str | None:
    return ALPHABET[i] if SAFE_LO <= i <= SAFE_HI else None


def log_letter_sequence(rng: random.Random) -> Draft:
    kind = rng.randrange(3)
    if kind == 0:
        steps = [rng.choice([1, 2, 3, 4])] * 5
    elif kind == 1:
        steps = [-rng.choice([1, 2, 3])] * 5
    else:
        s1, s2 = rng.choice([(1, 2), (2, 1), (1, 3), (3, 1), (3, -1), (2, -1)])
        steps = [s1, s2, s1, s2, s1]
    idx = [rng.randrange(SAFE_LO, SAFE_HI + 1)]
    for s in steps:
        idx.append(idx[-1] + s)
    shown = [letter(i) for i in idx[:5]]
    key = letter(idx[5])
    if None in shown or key is None:
        raise Retry
    last_step = steps[3]
    cands = [
        letter(idx[4] + last_step) if kind == 2 else letter(idx[5] + steps[4]),
        letter(idx[5] + 1),
        letter(idx[5] - 1),
        letter(idx[5] + 2),
    ]
    stem = (
        f"Яка літера має бути наступною в ряду (за українською абеткою): "
        f"{', '.join(str(s) for s in shown)}, …?"
    )
    return draft(stem, key, cands)


# (nominative, accusative, feminine?)
PEOPLE = [
    ("Андрій", "Андрія", False),
    ("Богдан", "Богдана", False),
    ("Дмитро", "Дмитра", False),
    ("Тарас", "Тараса", False),
    ("Марко", "Марка", False),
    ("Петро", "Петра", False),
    ("Назар", "Назара", False),
    ("Остап", "Остапа", False),
    ("Оксана", "Оксану", True),
    ("Ірина", "Ірину", True),
    ("Олена", "Олену", True),
    ("Галина", "Галину", True),
    ("Віра", "Віру", True),
    ("Соломія", "Соломію", True),
    ("Леся", "Лесю", True),
    ("Зоряна", "Зоряну", True),
]

# (more: m, f; less: m, f; question about the most; about the least; «за віком»-style phrase)
COMPARISONS = [
    (
        ("старший", "старша"),
        ("молодший", "молодша"),
        "Хто з них найстарший?",
        "Хто з них наймолодший?",
        "за віком, якщо рахувати від найстаршого",
    ),
    (
        ("вищий", "вища"),
        ("нижчий", "нижча"),
        "Хто з них найвищий?",
        "Хто з них найнижчий?",
        "за зростом, якщо рахувати від найвищого",
    ),
    (
        ("бігає швидше", "бігає швидше"),
        ("бігає повільніше", "бігає повільніше"),
        "Хто з них бігає найшвидше?",
        "Хто з них бігає найповільніше?",
        "за швидкістю бігу, якщо рахувати від найшвидшого",
    ),
]

ORDINALS = {2: "другий", 3: "третій", 4: "четвертий"}


def log_ordering(rng: random.Random) -> Draft:
    n = rng.choice([4, 5])
    people = rng.sample(PEOPLE, n)  # people[0] has the most of the quality
    more, less, ask_most, ask_least, ranked = rng.choice(COMPARISONS)
    facts = []
    for upper, lower in itertools.pairwise(people):
        if rng.random() < 0.5:
            facts.append(f"{upper[0]} {more[upper[2]]} за {lower[1]}")
        else:
            facts.append(f"{lower[0]} {less[lower[2]]} за {upper[1]}")
    rng.shuffle(facts)
    question = rng.randrange(3)
    if question == 0:
        ask, answer = ask_most, people[0]
    elif question == 1:
        ask, answer = ask_least, people[-1]
    else:
        place = rng.randrange(2, n)
        ask, answer = f"Хто з них {ORDINALS[place]} {ranked}?", people[place - 1]
    stem = f"Відомо, що {'; '.join(facts)}. {ask}"
    others = [p[0] for p in people if p is not answer]
    rng.shuffle(others)
    return draft(stem, answer[0], others)


# (nominative plural, instrumental plural, nominative singular, instrumental singular)
GROUPS = [
    (
        "члени шахового клубу",
        "членами шахового клубу",
        "член шахового клубу",
        "членом шахового клубу",
    ),
    ("учні ліцею", "учнями ліцею", "учень ліцею", "учнем ліцею"),
    ("власники собак", "власниками собак", "власник собаки", "власником собаки"),
    ("любителі джазу", "любителями джазу", "любитель джазу", "любителем джазу"),
    ("волонтери фестивалю", "волонтерами фестивалю", "волонтер фестивалю", "волонтером фестивалю"),
    ("учасники хору", "учасниками хору", "учасник хору", "учасником хору"),
    (
        "мешканці цього будинку",
        "мешканцями цього будинку",
        "мешканець цього будинку",
        "мешканцем цього будинку",
    ),
    (
        "відвідувачі бібліотеки",
        "відвідувачами бібліотеки",
        "відвідувач бібліотеки",
        "відвідувачем бібліотеки",
    ),
    ("велосипедисти", "велосипедистами", "велосипедист", "велосипедистом"),
]

Group = tuple[str, str, str, str]


def all_are(x: Group, y: Group) -> str:
    return f"Усі {x[0]} є {y[1]}"


def some_are(x: Group, y: Group) -> str:
    return f"Деякі {x[0]} є {y[1]}"


def none_is(x: Group, y: Group) -> str:
    return f"Жоден {x[2]} не є {y[3]}"


def some_not(x: Group, y: Group) -> str:
    return f"Деякі {x[0]} не є {y[1]}"


def log_syllogism(rng: random.Random) -> Draft:
    a, b, c = rng.sample(GROUPS, 3)
    form = rng.randrange(4)
    # Each form: two premises, the one conclusion that follows, and three that do not.
    # Conclusions that DO follow (e.g. «Деякі B є C» in Darii) are never offered as wrong.
    if form == 0:  # Barbara
        premises = [all_are(a, b), all_are(b, c)]
        key = all_are(a, c)
        wrong = [all_are(c, a), some_not(a, c), none_is(b, c)]
    elif form == 1:  # Darii
        premises = [all_are(a, b), some_are(c, a)]
        key = some_are(c, b)
        wrong = [all_are(c, b), all_are(b, a), none_is(c, b)]
    elif form == 2:  # Celarent
        premises = [none_is(a, b), all_are(c, a)]
        key = none_is(c, b)
        wrong = [some_are(c, b), all_are(b, c), all_are(a, c)]
    else:  # Ferio
        premises = [none_is(a, b), some_are(c, a)]
        key = some_not(c, b)
        wrong = [none_is(c, b), all_are(c, b), all_are(c, a)]
    rng.shuffle(premises)
    stem = (
        f"Припустімо, що обидва твердження істинні: «{premises[0]}»; «{premises[1]}». "
        f"Який висновок обов{APOS}язково з них випливає?"
    )
    return draft(stem, key, wrong)


NUMBER_PROPERTIES: dict[str, Callable[[int], bool]] = {
    "even": lambda n: n % 2 == 0,
    "div3": lambda n: n % 3 == 0,
    "div4": lambda n: n % 4 == 0,
    "div5": lambda n: n % 5 == 0,
    "div6": lambda n: n % 6 == 0,
    "div7": lambda n: n % 7 == 0,
    "div9": lambda n: n % 9 == 0,
    "div11": lambda n: n % 11 == 0,
    "prime": lambda n: n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1)),
    "square": lambda n: math.isqrt(n) ** 2 == n,
}
# The properties a question is built on, and the ones a solver is likely to notice: no guard
# may single out a number other than the intended one.
ODD_RULES = ["div3", "div7", "div9", "div11", "prime", "square", "div4", "div6"]
ODD_GUARDS = [
    "even",
    "div3",
    "div4",
    "div5",
    "div6",
    "div7",
    "div9",
    "div11",
    "prime",
    "square",
]


def log_odd_one_out(rng: random.Random, rule_name: str) -> Draft:
    rule = NUMBER_PROPERTIES[rule_name]
    pool = range(10, 100)
    having = [n for n in pool if rule(n)]
    lacking = [n for n in pool if not rule(n)]
    numbers = [*rng.sample(having, 3), rng.choice(lacking)]
    odd = numbers[3]
    # Reject sets where some other simple property singles out a different number.
    for prop in (NUMBER_PROPERTIES[name] for name in ODD_GUARDS):
        marks = [prop(n) for n in numbers]
        for i, m in enumerate(marks):
            alone = all(marks[j] != m for j in range(4) if j != i)
            if alone and numbers[i] != odd:
                raise Retry
    others = numbers[:3]
    rng.shuffle(others)
    stem = "Три з цих чисел мають спільну властивість, якої немає в четвертого. Яке число зайве?"
    return draft(stem, str(odd), [str(n) for n in others])


DAYS = [
    ("понеділок", False),
    ("вівторок", False),
    ("середа", True),
    ("четвер", False),
    (f"п{APOS}ятниця", True),
    ("субота", True),
    ("неділя", True),
]
DAY_REFS = [("Позавчора", -2), ("Учора", -1), ("Завтра", 1), ("Післязавтра", 2)]


def log_weekday(rng: random.Random) -> Draft:
    ref, offset = rng.choice(DAY_REFS)
    ref_day = rng.randrange(7)
    name, fem = DAYS[ref_day]
    verb = ("була" if fem else "був") if offset < 0 else "буде"
    today = ref_day - offset
    n = rng.randrange(3, 45)
    if n % 7 == 0:
        raise Retry
    forward = rng.random() < 0.6
    if forward:
        ask = f"Який день тижня буде через {days(n)}?"
        target = today + n
        naive = ref_day + n  # counted from the day named, not from today
        wrong_way = today - n
    else:
        ask = f"Який день тижня був {days(n)} тому?"
        target = today - n
        naive = ref_day - n
        wrong_way = today + n
    stem = f"{ref} {verb} {name}. {ask}"

    def day(i: int) -> str:
        return cap(DAYS[i % 7][0])

    return draft(stem, day(target), [day(naive), day(wrong_way), day(target + 1), day(target - 1)])


CIPHER_WORDS = [
    "КІТ",
    "ЛІС",
    "СИР",
    "СІК",
    "НІС",
    "РІК",
    "ТОРТ",
    "ПОРТ",
    "МІСТ",
    "КОЛІР",
    "МОРОЗ",
    "ЛИСТ",
    "КРОК",
    "СТІЛ",
    "КІНО",
    "ФОТО",
    "ЖИТО",
    "МІСТО",
    "ЛІТО",
    "ПІСОК",
    "ЗІРКИ",
    "ОЗЕРО",
    "ПОЇЗД",
    "НОТИ",
    "СОКІЛ",
    "ТИСК",
    "ЛИМОН",
    "ПОТІК",
    "СМІХ",
    "ПРОСТІР",
]


def shift_word(word: str, s: int) -> str | None:
    out = []
    for ch in word:
        c = letter(ALPHABET.index(ch) + s)
        if c is None or ALPHABET.index(ch) < SAFE_LO or ALPHABET.index(ch) > SAFE_HI:
            return None
        out.append(c)
    return "".join(out)


def log_cipher(rng: random.Random) -> Draft:
    s = rng.choice([1, 2, -1, 3])
    example, word = rng.sample(CIPHER_WORDS, 2)
    coded_example = shift_word(example, s)
    key = shift_word(word, s)
    if coded_example is None or key is None or example == example[::-1]:
        raise Retry
    stem = (
        f"У певному шифрі слово {example} записують як {coded_example}. "
        f"Як у цьому шифрі буде записано слово {word}?"
    )
    return draft(
        stem,
        key,
        [
            shift_word(word, -s),  # shifted the wrong way
            shift_word(word, s + (1 if s > 0 else -1)),  # one step too far
            key[::-1],
            shift_word(word, 2 * s),
        ],
    )


ROW_OPS: dict[str, Callable[[int, int], int]] = {
    "a*b": lambda a, b: a * b,
    "a+b": lambda a, b: a + b,
    "a-b": lambda a, b: a - b,
    "b-a": lambda a, b: b - a,
    "a*a+b": lambda a, b: a * a + b,
    "a+b*b": lambda a, b: a + b * b,
    "a*a-b": lambda a, b: a * a - b,
    "2*(a+b)": lambda a, b: 2 * (a + b),
    "a*b+1": lambda a, b: a * b + 1,
    "a*b-1": lambda a, b: a * b - 1,
    "a*b+a": lambda a, b: a * b + a,
    "a*b+b": lambda a, b: a * b + b,
    "a*b-a": lambda a, b: a * b - a,
    "(a+b)**2": lambda a, b: (a + b) ** 2,
    "a+b+1": lambda a, b: a + b + 1,
    "a*a+b*b": lambda a, b: a * a + b * b,
    "2*a+b": lambda a, b: 2 * a + b,
    "a+2*b": lambda a, b: a + 2 * b,
}
ROW_RULES = ["a*b", "a*a+b", "2*(a+b)", "a*b+1", "a*b-1", "(a+b)**2", "a*a+b*b", "2*a+b"]


def log_row_rule(rng: random.Random) -> Draft:
    name = rng.choice(ROW_RULES)
    op = ROW_OPS[name]
    firsts = rng.sample(range(2, 10), 4)
    seconds = rng.sample(range(2, 10), 4)
    rows = list(zip(firsts, seconds, strict=True))
    examples, (a, b) = rows[:3], rows[3]
    # The examples must not hide the rule: no row with equal numbers (a*b+1 and a*a+1 would
    # agree), different first and second numbers across rows (so no rule like a+b+3 fits by
    # chance), and exactly one rule of the library fitting all three examples.
    if any(x == y for x, y in examples):
        raise Retry
    fitting = [
        other for other, f in ROW_OPS.items() if all(f(x, y) == op(x, y) for x, y in examples)
    ]
    if fitting != [name]:
        raise Retry
    key = op(a, b)
    shown = ", ".join(f"({x}, {y}, {op(x, y)})" for x, y in examples)
    stem = (
        f"У кожній трійці третє число отримано з перших двох за тим самим правилом: "
        f"{shown}, ({a}, {b}, ?). Яке число пропущено?"
    )
    wrong = [f(a, b) for other, f in ROW_OPS.items() if other != name]
    rng.shuffle(wrong)
    return draft(stem, fmt(key), [fmt(w) for w in wrong] + [fmt(key + 1), fmt(key - 1)])


LOGICAL_PLAN: list[tuple[Template, int]] = [
    (rotating([sequence_variant(r) for r in SEQUENCE_RULES], "log_number_sequence"), 12),
    (log_letter_sequence, 8),
    (log_ordering, 12),
    (log_syllogism, 6),
    (
        rotating(
            [functools.partial(log_odd_one_out, rule_name=name) for name in ODD_RULES],
            "log_odd_one_out",
        ),
        8,
    ),
    (log_weekday, 6),
    (log_cipher, 6),
    (log_row_rule, 6),
]


# ---------------------------------------------------------------------------------------------
# Assembly and output
# ---------------------------------------------------------------------------------------------


def build_drafts(rng: random.Random, plan: Sequence[tuple[Template, int]]) -> list[Draft]:
    drafts: list[Draft] = []
    seen: set[tuple[str, frozenset[str]]] = set()  # a stem may repeat with other options
    for template, count in plan:
        made = attempts = 0
        while made < count:
            attempts += 1
            if attempts > 100_000:
                raise RuntimeError(f"{template.__name__}: cannot make {count} distinct items")
            try:
                d = template(rng)
            except Retry:
                continue
            signature = (d.stem, frozenset((d.key, *d.distractors)))
            if signature in seen:
                continue
            seen.add(signature)
            drafts.append(d)
            made += 1
    return drafts


def place_keys(
    rng: random.Random, drafts: Sequence[Draft], category: str, prefix: str
) -> list[Item]:
    """Give every position 1..4 to the key equally often (±1), in a shuffled order."""
    positions = [i % N_OPTIONS + 1 for i in range(len(drafts))]
    rng.shuffle(positions)
    items = []
    for number, (d, pos) in enumerate(zip(drafts, positions, strict=True), start=1):
        options = list(d.distractors)
        rng.shuffle(options)
        options.insert(pos - 1, d.key)
        assert len(set(options)) == N_OPTIONS, d
        items.append(Item(f"{prefix}-{number:03d}", category, d.stem, tuple(options), pos))
    return items


def toml_string(text: str) -> str:
    """A TOML basic string: backslashes, quotes and control characters escaped."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render(items: Sequence[Item], title: str) -> str:
    lines = [
        f"# {title}",
        "# Generated by scripts/generate_aptitude_bank.py: do not edit by hand; change the script",
        "# and run `python3 scripts/generate_aptitude_bank.py` from the repository root.",
    ]
    for item in items:
        lines += [
            "",
            "[[items]]",
            f"id = {toml_string(item.id)}",
            f"tags = {{ category = {toml_string(item.category)} }}",
            f"key = {item.key}",
            "[items.text.uk]",
            f"stem = {toml_string(item.stem)}",
            "options = [",
            *(f"    {toml_string(option)}," for option in item.options),
            "]",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    rng = random.Random(SEED)
    outputs = [
        ("items-numerical.toml", "numerical", "num", NUMERICAL_PLAN, "Числові здібності"),
        ("items-logical.toml", "logical", "log", LOGICAL_PLAN, "Логічні здібності"),
    ]
    for filename, category, prefix, plan, title in outputs:
        items = place_keys(rng, build_drafts(rng, plan), category, prefix)
        path = BANK_DIR / filename
        path.write_text(render(items, f"{title}: {len(items)} items"), encoding="utf-8")
        counts = [sum(1 for i in items if i.key == k) for k in range(1, N_OPTIONS + 1)]
        print(f"{path.relative_to(REPO_ROOT)}: {len(items)} items, keys 1..4: {counts}")


if __name__ == "__main__":
    main()
