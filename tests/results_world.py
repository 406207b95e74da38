"""A small, real world for results tests: bank and exam files on disk, a real SQLite data
directory, and sittings recorded through the same store calls the server makes.

Exams: ``ua-t`` (ua-prosecutor: professional 10 items, aptitude 9 items in three categories),
``kz-t`` and ``kz-t2`` (kz-prosecutor, 20 items by act; the same people, matched by IIN, are
registered in both, so a retake in the second round can be checked against the first).
All people are fictional.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from engine.banks import load_banks, write_synthetic_bank
from engine.exams import load_exams
from engine.forms import assemble_form
from engine.model import Bank, Candidate, Exam
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.results import result_record
from engine.roster import iin_check_digit
from engine.schemes import PartResult
from engine.scoring import build_matrix
from engine.sitting import Sitting, Snapshot, sitting_id_for
from engine.store.sqlite import SQLiteStore

KYIV = ZoneInfo("Europe/Kyiv")
ALMATY = ZoneInfo("Asia/Almaty")

UA_EXAM = """
[exam]
id = "ua-t"
title = { uk = "Тестування (перевірка)" }
scheme = "ua-prosecutor"
languages = ["uk"]
identity_document = "passport"

[[parts]]
id = "professional"
title = { uk = "Професійний тест" }
bank = "ua-prof"
minutes = 120
[parts.blueprint]
dimension = "topic"
counts = { law = 5, procedure = 5 }

[[parts]]
id = "aptitude"
title = { uk = "Тест загальних здібностей" }
bank = "ua-apt"
minutes = 60
[parts.blueprint]
dimension = "category"
counts = { logical = 3, verbal = 3, numerical = 3 }

[[sites]]
id = "kyiv"
title = { uk = "Регіональний центр у місті Києві" }

[[sites]]
id = "lviv"
title = { uk = "Регіональний центр у місті Львові" }

[candidates]
file = "ua-t.csv"
"""

KZ_EXAM = """
[exam]
id = "{exam_id}"
title = {{ kk = "Сынақ тестілеуі", ru = "Проверочное тестирование" }}
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
identity_document = "iin"

[[parts]]
id = "legislation"
title = {{ kk = "Заңнама", ru = "Законодательство" }}
bank = "kz-law"
minutes = 90
[parts.blueprint]
dimension = "act"
counts = {{ prosecutor-office = 5, anti-corruption = 5, ethics-code = 5, constitution = 5 }}

[[sites]]
id = "astana"
title = {{ kk = "Астана", ru = "Астана" }}

[candidates]
file = "kz-people.csv"
"""

UA_OFFICES = ("Окружна прокуратура міста Києва №1", "Окружна прокуратура міста Львова №2")
UA_PEOPLE = [
    ("ua-01", "Шевченко Олена Петрівна", "kyiv", UA_OFFICES[0], "100000001"),
    ("ua-02", "Бойко Андрій Іванович", "kyiv", UA_OFFICES[0], "100000002"),
    ("ua-03", "Їжакевич Ірина Олегівна", "kyiv", UA_OFFICES[0], "100000003"),
    ("ua-04", "Ґудзь Тарас Романович", "kyiv", UA_OFFICES[0], "100000004"),
    ("ua-05", "Мороз Юлія Василівна", "kyiv", UA_OFFICES[0], "100000005"),
    ("ua-06", "Лисенко Олег Юрійович", "lviv", UA_OFFICES[1], "100000006"),
    ("ua-07", "Руденко Софія Андріївна", "lviv", UA_OFFICES[1], "100000007"),
    ("ua-08", "Ткаченко Максим Сергійович", "lviv", UA_OFFICES[1], "100000008"),
]
GROUP = [(f"m{n:02d}", f"Член Групи {n:02d}", "member") for n in range(1, 16)]
GROUP[0] = ("m01", "Коваленко Наталія Сергіївна", "head")
GROUP[1] = ("m02", "Марченко Петро Іванович", "secretary")
GROUP[2] = ("m03", "Савченко Галина Миколаївна", "deputy")


def fictional_iin(serial: int) -> str:
    """A valid IIN of someone born 1 Jan 1990 (male), with `serial` (never-issued ones skipped)."""
    while True:
        first = f"9001013{serial:04d}"
        check = iin_check_digit(first)
        if check is not None:
            return f"{first}{check}"
        serial += 1


KZ_PEOPLE = [
    ("kz-01", "Ахметов Ерлан Болатұлы", fictional_iin(11)),
    ("kz-02", "Серікбаева Айгерім Маратқызы", fictional_iin(22)),
    ("kz-03", "Оспанов Данияр Серікович", fictional_iin(33)),
]


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Epoch seconds of a local wall-clock time."""
    return datetime.datetime(year, month, day, hour, minute, tzinfo=tz).timestamp()


def write_catalog(root: Path) -> tuple[Path, Path]:
    banks = root / "banks"
    write_synthetic_bank(
        banks / "ua-prof", bank_id="ua-prof", item_count=20, languages=["uk"],
        dimension="topic", values=["law", "procedure"], seed=1,
    )  # fmt: skip
    write_synthetic_bank(
        banks / "ua-apt", bank_id="ua-apt", item_count=30, languages=["uk"],
        dimension="category", values=["logical", "verbal", "numerical"], seed=2,
    )  # fmt: skip
    write_synthetic_bank(
        banks / "kz-law", bank_id="kz-law", item_count=40, languages=["kk", "ru"],
        dimension="act",
        values=["prosecutor-office", "anti-corruption", "ethics-code", "constitution"], seed=3,
    )  # fmt: skip
    exams = banks / "exams"
    exams.mkdir()
    (exams / "ua-t.toml").write_text(UA_EXAM, encoding="utf-8")
    _write_people(exams / "ua-t.csv", UA_PEOPLE)
    for exam_id in ("kz-t", "kz-t2"):
        (exams / f"{exam_id}.toml").write_text(KZ_EXAM.format(exam_id=exam_id), encoding="utf-8")
    kz_rows = [(i, name, "astana", "", iin) for i, name, iin in KZ_PEOPLE]
    _write_people(exams / "kz-people.csv", kz_rows)
    return banks, exams


def _write_people(path: Path, rows: Sequence[tuple[str, ...]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "full_name", "site", "office", "document"])
        writer.writerows(rows)


def write_group(path: Path, members: list[tuple[str, str, str]] = GROUP) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "full_name", "role"])
        writer.writerows(members)
    return path


@dataclass
class World:
    root: Path
    banks_dir: Path
    exams_dir: Path
    banks: dict[str, Bank]
    exams: dict[str, Exam]
    candidates: dict[str, dict[str, Candidate]]
    registry: SchemeRegistry
    store: SQLiteStore
    secrets: dict[str, bytes] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.store.data_dir

    async def sit(
        self,
        exam_id: str,
        candidate_id: str,
        part_id: str,
        *,
        closed_at: float,
        correct: int | Mapping[str, int] = 0,
        state: str = "submitted",
        reason: str = "",
        by: str = "m04",
        language: str | None = None,
    ) -> PartResult | None:
        """Record a whole sitting as the server would, then score and store it.

        `correct`: how many form items are answered right (the rest wrong), or per tag value.
        """
        exam = self.exams[exam_id]
        part = exam.part(part_id)
        bank = self.banks[part.bank_id]
        form = assemble_form(self.secrets[exam_id], exam, part, bank, candidate_id)
        snapshot = Snapshot(
            sitting_id_for(exam_id, candidate_id, part_id), exam_id, candidate_id, part_id,
            float(part.time_limit_s),
        )  # fmt: skip
        sitting = Sitting(snapshot, form, exam.languages)
        started = closed_at - 600
        if state == "no-show":
            await self.store.record(sitting.mark_no_show(closed_at, by=by), sitting.snapshot)
            return None
        await self.store.record(sitting.check_in(started - 5, by="self"), sitting.snapshot)
        event = sitting.start(started, language=language or exam.languages[0])
        await self.store.record(event, sitting.snapshot)
        remaining = dict(correct) if isinstance(correct, Mapping) else None
        right_left = correct if isinstance(correct, int) else 0
        for seq, form_item in enumerate(form.items, start=1):
            item = bank.by_id[form_item.item_id]
            tag = item.tags[part.blueprint.dimension]
            if remaining is not None:
                right = remaining.get(tag, 0) > 0
                remaining[tag] = remaining.get(tag, 0) - 1
            else:
                right = right_left > 0
                right_left -= 1
            choice = item.key if right else (item.key + 1) % item.option_count
            shown = form_item.option_order.index(choice)
            answer = sitting.answer(
                seq=seq, item_id=item.id, shown=shown, flagged=False, now=started + seq
            )
            assert answer is not None
            await self.store.record(answer, sitting.snapshot)
        if state == "terminated":
            event = sitting.terminate(closed_at, by=by, reason=reason or "used a phone")
        else:
            event = sitting.submit(closed_at)
        await self.store.record(event, sitting.snapshot)
        scheme = self.registry.for_exam(exam)
        if state == "terminated":
            result = scheme.annulled(exam, part, candidate_id, sitting.snapshot.close_reason)
        else:
            answers = {a.item_id: a.choice for a in sitting.answers.values()}
            (result,) = scheme.score_part(exam, part, build_matrix(bank, [(form, answers)]))
        body = result_record(self.registry, exam, result, closed_at)
        await self.store.save_result(sitting.id, body, closed_at)
        return result


async def open_world(root: Path) -> World:
    banks_dir, exams_dir = write_catalog(root)
    banks = load_banks(banks_dir)
    setups = load_exams(exams_dir, banks)
    store = SQLiteStore(root / "data")
    await store.open()
    world = World(
        root,
        banks_dir,
        exams_dir,
        banks,
        {exam_id: setup.exam for exam_id, setup in setups.items()},
        {exam_id: {c.id: c for c in setup.candidates} for exam_id, setup in setups.items()},
        SchemeRegistry(create_plugin_manager(entry_points=False)),
        store,
    )
    for exam_id, setup in setups.items():
        world.secrets[exam_id] = await store.register_exam(exam_id, setup.candidates, {})
    return world
