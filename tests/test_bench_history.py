"""The bench's earlier exam days (bench/history.py) are history the engine reads as its own."""

from __future__ import annotations

from pathlib import Path

from bench.history import EARLIER_EXAM, write_earlier_days
from engine import records
from engine.store.sqlite import SQLiteStore, read_journal


async def test_earlier_days_are_final_sittings_with_results_the_admission_check_reads(
    tmp_path: Path,
) -> None:
    await write_earlier_days(tmp_path, 300)
    store = SQLiteStore(tmp_path)
    await store.open()
    try:
        history = await store.run(
            lambda connection: records.load_history(
                connection, "E00000000007", "bench-kz", "bench-kz-00007"
            )
        )
        count = await store.run(
            lambda connection: connection.execute(
                "SELECT count(*) FROM sittings WHERE exam_id = ? AND state = 'submitted'",
                (EARLIER_EXAM,),
            ).fetchone()[0]
        )
    finally:
        await store.close()
    assert count == 300
    assert [(row[0], row[2], row[3]) for row in history] == [
        (EARLIER_EXAM, "earlier-000007", "submitted")
    ]
    assert history[0][5] is not None and '"outcome": "pass"' in history[0][5]
    assert list(read_journal(store.path)) == [], "the earlier days are rows, not journal events"
