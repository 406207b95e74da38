"""A small exam on a synthetic bank, and a real server on 127.0.0.1 for it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from engine.banks import write_synthetic_bank

EXAM_TEMPLATE = """
[exam]
id = "{exam_id}"
title = {{ kk = "Сынақ", ru = "Тест" }}
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
admission = "self"
identity_document = "iin"

[[parts]]
id = "main"
title = {{ kk = "Негізгі бөлім", ru = "Основная часть" }}
bank = "test-bank"
{time}
[parts.blueprint]
dimension = "act"
counts = {{ prosecutor-office = 4, anti-corruption = 4, ethics-code = 4 }}

[[sites]]
id = "site-a"
title = {{ kk = "А орталығы", ru = "Центр А" }}

[candidates]
generate = {candidates}
"""


PROCTORED_EXAM = """
[exam]
id = "t-proctored"
title = { kk = "Бақыланатын сынақ", ru = "Тест под наблюдением" }
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
admission = "proctor"
identity_document = "iin"

[[parts]]
id = "main"
title = { kk = "Негізгі бөлім", ru = "Основная часть" }
bank = "test-bank"
minutes = 90
[parts.blueprint]
dimension = "act"
counts = { prosecutor-office = 4, anti-corruption = 4, ethics-code = 4 }

[[sites]]
id = "site-a"
title = { kk = "А орталығы", ru = "Центр А" }

[[sites]]
id = "site-b"
title = { kk = "Б орталығы", ru = "Центр Б" }

[[staff]]
login = "proctor-a"
name = "Proctor of A"
role = "proctor"
sites = ["site-a"]

[[staff]]
login = "proctor-b"
name = "Proctor of B"
role = "proctor"
sites = ["site-b"]

[[staff]]
login = "observer"
name = "Observer of both"
role = "observer"
sites = ["site-a", "site-b"]

[[staff]]
login = "admin"
name = "Administrator"
role = "admin"

[candidates]
generate = 40
"""


def write_test_catalog(root: Path, *, short_seconds: int = 4) -> tuple[Path, Path]:
    """Banks and exams: `t-exam` (90 minutes) and `t-short` (a few seconds, for deadlines)."""
    banks = root / "banks"
    write_synthetic_bank(
        banks / "test-bank",
        bank_id="test-bank",
        item_count=60,
        languages=["kk", "ru"],
        dimension="act",
        values=["prosecutor-office", "anti-corruption", "ethics-code"],
        seed=7,
    )
    exams = banks / "exams"
    exams.mkdir()
    (exams / "t-exam.toml").write_text(
        EXAM_TEMPLATE.format(exam_id="t-exam", time="minutes = 90", candidates=60),
        encoding="utf-8",
    )
    (exams / "t-short.toml").write_text(
        EXAM_TEMPLATE.format(
            exam_id="t-short",
            time=f"seconds = {short_seconds}\nwarnings_seconds = [2]",
            candidates=20,
        ),
        encoding="utf-8",
    )
    (exams / "t-proctored.toml").write_text(PROCTORED_EXAM, encoding="utf-8")
    return banks, exams


def read_staff(data_dir: Path, exam_id: str) -> dict[str, str]:
    """login → password, as the server wrote them on first load."""
    path = data_dir / "access-codes" / f"{exam_id}-staff.csv"
    with path.open(encoding="utf-8") as handle:
        return {row["login"]: row["password"] for row in csv.DictReader(handle)}


@dataclass
class Codes:
    """The access codes the server wrote for an exam, handed out one by one."""

    rows: list[tuple[str, str]]

    @classmethod
    def read(cls, data_dir: Path, exam_id: str) -> Codes:
        with (data_dir / "access-codes" / f"{exam_id}.csv").open(encoding="utf-8") as handle:
            return cls([(row["candidate"], row["code"]) for row in csv.DictReader(handle)])

    def take(self) -> tuple[str, str]:
        return self.rows.pop(0)
