"""The store alone: how many answers per second `SQLiteStore.record` makes durable, no sockets.

A closed loop of sittings, each recording its next answer as soon as the previous one is on disk,
exactly the calls the hall makes per answer. It separates the cost of the writer thread (journal,
sittings row, answers row, group commit with fsync) from the cost of the sockets, and is the
quickest way to see what a change to engine/store/sqlite.py or engine/journal.py is worth.

    python -m bench.store --sittings 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.sitting import AnswerRecord, SittingEvent, Snapshot, State
from engine.store.sqlite import SQLiteStore


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(sittings: int, seconds: float, data_dir: Path) -> dict[str, Any]:
    store = SQLiteStore(data_dir)
    await store.open()
    started_at = time.time()
    snapshots = [
        Snapshot(
            f"bench/c{n:05d}/legislation",
            "bench",
            f"c{n:05d}",
            "legislation",
            5400.0,
            state=State.RUNNING,
            language="kk",
            checked_in_at=started_at,
            started_at=started_at,
        )
        for n in range(sittings)
    ]
    done = 0
    end = time.monotonic() + seconds

    async def sitting(snapshot: Snapshot) -> None:
        nonlocal done
        await store.record(SittingEvent(snapshot.sitting_id, "started", time.time()), snapshot)
        seq = 0
        while time.monotonic() < end:
            seq += 1
            now = time.time()
            record = AnswerRecord(f"po-{seq % 120:03d}", seq % 4, False, seq, now)
            snapshot = dataclasses.replace(snapshot, last_seq=seq)
            data = {"seq": seq, "item": record.item_id, "choice": record.choice, "flag": False}
            event = SittingEvent(snapshot.sitting_id, "answer", now, data, answer=record)
            await store.record(event, snapshot)
            done += 1

    cpu0, t0, commits0 = _cpu_s(), time.monotonic(), store.commits
    await asyncio.gather(*(sitting(s) for s in snapshots))
    wall, cpu = time.monotonic() - t0, _cpu_s() - cpu0
    commits = store.commits - commits0
    await store.close()
    return {
        "sittings": sittings,
        "records_per_s": round(done / wall),
        "cpu_us_per_record": round(cpu / done * 1e6, 1),
        "records_per_commit": round(done / max(1, commits), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sittings", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="examhall-bench-store-") as folder:
        print(json.dumps(asyncio.run(measure(args.sittings, args.seconds, Path(folder)))))


if __name__ == "__main__":
    main()
