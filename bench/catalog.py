"""The banks and the exam a benchmark server loads, written fresh for every server.

The online exam draws its 120 items from the demo bank `kz-legislation` with the `kz-demo`
blueprint, so forms on the wire have the demo's real sizes (Kazakh and Russian texts, about
75 KiB a form); a large synthetic bank sits beside it for the offline form-assembly figure.
Only the bench exam is loaded, so the server's start-up and memory are not those of the demos.
Candidates sit in rooms of `ROOM` (one site each, round-robin), as a test centre seats them;
with `proctors` every room gets a proctor login for the watcher workload.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.banks import write_synthetic_bank
from engine.resources import bundled_banks_dir

EXAM_ID = "bench-kz"
PART_ID = "legislation"
DEMO_BANK = "kz-legislation"
KZ_COUNTS = {
    "prosecutor-office": 30,
    "anti-corruption": 30,
    "ethics-code": 20,
    "constitution": 20,
    "criminal-procedure": 20,
}
SYNTHETIC_BANK = "bench-synthetic"

EXAM_TOML = """\
[exam]
id = "{exam_id}"
title = {{ kk = "Жүктеме сынағы", ru = "Нагрузочный тест" }}
scheme = "kz-prosecutor"
languages = ["kk", "ru"]
admission = "self"
identity_document = "iin"

[[parts]]
id = "{part_id}"
title = {{ kk = "Заңнама", ru = "Законодательство" }}
bank = "{bank}"
minutes = {minutes}
shuffle_options = true
[parts.blueprint]
dimension = "act"
counts = {{ {counts} }}

{sites}
[candidates]
generate = {candidates}
"""

ROOM = 25
"""Sittings per site, and so per proctor (issue 6: one proctor connection per 25 sittings)."""


def site_ids(candidates: int) -> list[str]:
    return [f"room-{n:04d}" for n in range(1, max(1, -(-candidates // ROOM)) + 1)]


def proctor_login(site: str) -> str:
    return f"proctor-{site}"


def write_catalog(
    root: Path, *, candidates: int, minutes: int = 180, proctors: bool = False
) -> Path:
    """Banks and exams for one server under `root`; returns the banks folder to serve."""
    banks = root / "banks"
    banks.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundled_banks_dir() / DEMO_BANK, banks / DEMO_BANK, dirs_exist_ok=True)
    exams = banks / "exams"
    exams.mkdir(exist_ok=True)
    counts = ", ".join(f"{act} = {count}" for act, count in KZ_COUNTS.items())
    rooms = site_ids(candidates)
    sites = "\n".join(
        f'[[sites]]\nid = "{site}"\ntitle = {{ kk = "{site}", ru = "{site}" }}\n' for site in rooms
    )
    if proctors:
        sites += "\n" + "\n".join(
            f'[[staff]]\nlogin = "{proctor_login(site)}"\nname = "Proctor {site}"\n'
            f'role = "proctor"\nsites = ["{site}"]\n'
            for site in rooms
        )
    (exams / f"{EXAM_ID}.toml").write_text(
        EXAM_TOML.format(
            exam_id=EXAM_ID,
            part_id=PART_ID,
            bank=DEMO_BANK,
            minutes=minutes,
            counts=counts,
            sites=sites,
            candidates=candidates,
        ),
        encoding="utf-8",
    )
    return banks


def write_synthetic(root: Path, *, items: int = 10_000) -> Path:
    """A large synthetic bank with the KZ act values (for offline form assembly)."""
    return write_synthetic_bank(
        root / SYNTHETIC_BANK,
        bank_id=SYNTHETIC_BANK,
        item_count=items,
        languages=["kk", "ru"],
        dimension="act",
        values=sorted(KZ_COUNTS),
        seed=11,
    )
