"""Run the benchmarks: the engine beside the bare ceiling, measured by the same generator.

    python -m bench.run --quick        # a few minutes: smaller counts, shorter windows
    python -m bench.run                # the full set of docs/performance.md (about 15 minutes)
    python -m bench.run --only closed-loop,exam-day

Every server under test is a subprocess on 127.0.0.1 (`examhall serve` on a fresh data
directory, or `bench.ceiling`); the load comes from `bench.load` processes. Every workload
against the engine ends with the durability check: each acknowledged answer is looked up in the
SQLite store with its original option, each acknowledged A/V chunk (exam day) in the media table
and the journal with its hash and size, and the journal is verified end to end. The report
(a table and JSON) goes to the run folder printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench import detectors as detectors_bench
from bench import offline
from bench import store as store_bench
from bench.catalog import EXAM_ID, PART_ID
from bench.history import write_earlier_days
from bench.procstat import ProcSample, sample
from bench.servers import Server, start_ceiling, start_engine
from engine import journal, wire
from engine.banks import load_banks
from engine.exams import load_exams
from engine.fixation import Kind, MediaRecord, verify_files
from engine.forms import assemble_forms
from engine.store.proctoring import read_media, read_media_journal
from engine.store.sqlite import SQLiteStore, read_exam_secret, read_journal

READY_TIMEOUT_S = 900.0
"""Preparation (signing in and starting 10,000 sittings) must finish within this."""
GRACE_S = 120.0
"""How long after its window a worker may take to drain and report before it is killed."""
LEAD_S = 1.0
"""Time between 'go' and the common start, so every worker starts the same instant."""


@dataclass(frozen=True)
class Plan:
    """Counts and windows of one run; `--quick` shrinks them."""

    workers: int = 2
    closed_connections: int = 1000
    closed_s: float = 30.0
    warmup_s: float = 3.0
    exam_day_sizes: tuple[int, ...] = (1000, 5000, 10000)
    exam_day_s: float = 60.0
    interval_s: float = 10.0
    watched_sizes: tuple[int, ...] = (10000,)
    """Exam days run again with one proctor watching every room of 25 (workload 5)."""
    levels: bool = True
    """Exam-day sittings send audio levels every 5 s (off: what the talk detector costs)…"""
    levels_on: str = "media"
    """…on the media socket where the sitting has one, as the page does while it is open
    (`media`), or on the candidate socket (`candidate`, as before the page sent them there)."""
    chunks: bool = True
    """Exam-day sittings upload an A/V chunk every 10 s (off: what fixation costs)…"""
    media: str = "auto"
    """…on a media socket each (`socket`, as the page), over HTTP (`http`), or `auto`: on
    media sockets as far as the server's open-file limit allows, the rest over HTTP."""
    media_process: bool = True
    """The engine serves media sockets from its media process (its own file limit: every
    sitting gets one); off (`--media-in-process`): from the serving process, as the ceiling."""
    start_storm: int = 5000
    earlier_sittings: int = 50_000
    """Final sittings of earlier exam days in the start storm's store (bench/history.py): the
    admission check reads the person's history at every sign-in and start."""
    reconnect_storm: int = 1000
    forms: int = 100_000
    scored: int = 1_000_000


FULL = Plan()
QUICK = Plan(
    closed_s=10.0,
    warmup_s=2.0,
    exam_day_sizes=(1000,),
    exam_day_s=20.0,
    watched_sizes=(1000,),
    start_storm=1000,
    earlier_sittings=10_000,
    reconnect_storm=300,
)


@dataclass
class Window:
    """What the orchestrator saw of the server and the generators during one workload."""

    seconds: float = 0.0
    server_cpu_s: float = 0.0
    server_loop_cpu_s: float = 0.0
    """…of that, the server's main thread: its event loop."""
    server_children_cpu_s: float = 0.0
    """…of that, its child processes (the engine's media process and file process)."""
    generator_cpu_s: float = 0.0
    machine_busy_cores: float = 0.0
    rss_base: int = 0
    rss_loaded: int = 0
    rss_peak: int = 0
    health: dict[str, Any] | None = None
    """The engine's `server_health` as the window closed (before the generators hang up)."""


@dataclass
class Outcome:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float | None:
    return None if not values else round(float(np.percentile(np.asarray(values), q)), 2)


def by_tenth(results: list[dict[str, Any]], key: str, q: float) -> list[float | None]:
    """The `q`th percentile of `key` in each tenth of the window, first to last.

    Each worker lists its values in the order it took them, so the i-th tenth of every
    worker's list together is the window's i-th tenth (as near as their rates are even): a
    slow start or end shows here where the window's p99 cannot say when it happened.
    """
    tenths = []
    for tenth in range(10):
        part = []
        for result in results:
            values = result[key]
            part += values[tenth * len(values) // 10 : (tenth + 1) * len(values) // 10]
        tenths.append(percentile(part, q))
    return tenths


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# -- driving workers ------------------------------------------------------------------------------


async def drive(
    server: Server,
    mode: str,
    shares: list[dict[str, Any]],
    folder: Path,
    *,
    window_s: float | None,
    health: bool = False,
) -> tuple[list[dict[str, Any]], Window]:
    """Start one worker per share, wait until all are ready, start them together, collect.

    With `health`, the engine's own figures are read the moment the window closes, so the
    generators' hanging up 10,000 sockets afterwards is not in them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    workers = []
    outs = []
    for index, share in enumerate(shares):
        out = folder / f"{mode}-{index}.json"
        spec = {"mode": mode, "url": server.url, "out": str(out), **share}  # share may set mode
        spec_path = folder / f"{mode}-{index}.spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            str(spec_path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=(folder / f"{mode}-{index}.log").open("wb"),
        )
        workers.append(process)
        outs.append(out)
    window = Window()
    done: asyncio.Future[None] | None = None
    try:
        rss_base = sample(server.pid).rss_bytes
        await asyncio.wait_for(
            asyncio.gather(*(_expect(w, "ready") for w in workers)), READY_TIMEOUT_S
        )
        loaded = sample(server.pid)
        window.rss_base, window.rss_loaded = rss_base, loaded.rss_bytes
        start_at = time.time() + LEAD_S
        for w in workers:
            assert w.stdin is not None
            w.stdin.write(f"go {start_at}\n".encode())
            await w.stdin.drain()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        first, busy0 = _samples(server, workers), machine_busy_jiffies()
        t0 = time.monotonic()
        done = asyncio.ensure_future(_finish_together(workers))
        peak = loaded.rss_bytes
        limit = (window_s or 0) + GRACE_S + (READY_TIMEOUT_S if window_s is None else 0)
        last: tuple[ProcSample, list[ProcSample]] | None = None
        busy1 = busy0
        until = None if window_s is None else t0 + window_s
        while not done.done():
            if time.monotonic() - t0 > limit:
                raise TimeoutError(f"{mode}: workers still running after {limit} s")
            if health and window.health is None and until is not None and time.monotonic() > until:
                window.health = await asyncio.to_thread(server_health, server)
            with contextlib.suppress(FileNotFoundError):
                now_sample = _samples(server, workers)
                peak = max(peak, now_sample[0].rss_bytes)
                if until is None or time.monotonic() <= until:
                    last, busy1 = now_sample, machine_busy_jiffies()
                    window.seconds = time.monotonic() - t0
            await asyncio.wait({done}, timeout=0.25)
        await done
        if last is None:
            last, busy1 = first, machine_busy_jiffies()
            window.seconds = time.monotonic() - t0
        if health and window.health is None:
            window.health = await asyncio.to_thread(server_health, server)
        window.rss_peak = peak
        window.server_cpu_s = last[0].cpu_s - first[0].cpu_s
        window.server_loop_cpu_s = last[0].main_thread_cpu_s - first[0].main_thread_cpu_s
        window.server_children_cpu_s = last[0].children_cpu_s - first[0].children_cpu_s
        window.generator_cpu_s = sum(
            b.cpu_s - a.cpu_s for a, b in zip(first[1], last[1], strict=True)
        )
        busy = busy1[0] - busy0[0]
        total = max(1, busy1[1] - busy0[1])
        window.machine_busy_cores = round(busy / total * (os.cpu_count() or 1), 2)
    finally:
        if done is not None and not done.done():
            done.cancel()
        for w in workers:
            if w.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.kill()
                await w.wait()
    return [json.loads(out.read_text(encoding="utf-8")) for out in outs], window


def _samples(server: Server, workers: list[Any]) -> tuple[ProcSample, list[ProcSample]]:
    return sample(server.pid), [sample(w.pid) for w in workers]


async def _finish_together(workers: list[Any]) -> None:
    """Every worker says ``finished``; then all hang up at once and say ``done``."""
    await asyncio.gather(*(_expect(w, "finished") for w in workers))
    for w in workers:
        w.stdin.write(b"hangup\n")
        await w.stdin.drain()
    await asyncio.gather(*(_expect(w, "done") for w in workers))


async def _expect(process: Any, word: str) -> None:
    while True:
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"a worker exited before saying {word!r}; see its log")
        if line.decode().strip() == word:
            return


def split(values: list[Any], parts: int) -> list[list[Any]]:
    return [values[i::parts] for i in range(parts)]


def read_codes(server: Server) -> list[str]:
    assert server.data_dir is not None
    path = server.data_dir / "access-codes" / f"{EXAM_ID}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["code"] for row in csv.DictReader(handle)]


def merged(results: list[dict[str, Any]], key: str) -> list[Any]:
    return [value for result in results for value in result[key]]


def errors_of(results: list[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for result in results:
        for code, count in result["errors"].items():
            total[code] = total.get(code, 0) + count
    return total


# -- durability -----------------------------------------------------------------------------------


def check_durable(
    server: Server, acked: list[list[Any]], chunks: list[list[Any]] | None = None
) -> dict[str, Any]:
    """Every acknowledged answer is in the store, with the original option it was shown as.

    Run after the server has stopped. The shown position is mapped back through the candidate's
    form, regenerated from the exam secret as an auditor would; the journal is verified too.
    With `chunks` ((candidate, seq, sha256, size) of acknowledged media chunks) each must also
    be in the media table and the journal with its hash and size, and its file intact.
    """
    assert server.data_dir is not None and server.banks_dir is not None
    database = server.data_dir / SQLiteStore.FILE_NAME
    banks = load_banks(server.banks_dir)
    exam = load_exams(server.banks_dir / "exams", banks)[EXAM_ID].exam
    part = exam.part(PART_ID)
    candidates = sorted({row[0] for row in acked})
    secret = read_exam_secret(database, EXAM_ID)
    orders = {
        form.candidate_id: {fi.item_id: fi.option_order for fi in form.items}
        for form in assemble_forms(secret, exam, part, banks[part.bank_id], candidates)
    }
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        stored = {
            (sitting, seq): (item, choice)
            for sitting, seq, item, choice in connection.execute(
                "SELECT sitting_id, seq, item_id, choice FROM answers"
            )
        }
    finally:
        connection.close()
    missing = wrong = 0
    for candidate, seq, item, shown in acked:
        row = stored.get((f"{EXAM_ID}/{candidate}/{PART_ID}", seq))
        if row is None:
            missing += 1
        elif row != (item, None if shown is None else orders[candidate][item][shown]):
            wrong += 1
    try:
        report = journal.verify(read_journal(database), journal.read_head(server.data_dir))
        journal_state = f"intact ({report.events} events)"
    except Exception as error:
        journal_state = f"FAILED: {error}"
    figures: dict[str, Any] = {
        "acked": len(acked),
        "stored_answers": len(stored),
        "missing": missing,
        "wrong_choice": wrong,
        "lost": missing + wrong,
        "journal": journal_state,
    }
    if chunks is not None:
        figures |= check_chunks(server.data_dir, database, chunks)
    return figures


def check_chunks(data_dir: Path, database: Path, chunks: list[list[Any]]) -> dict[str, Any]:
    """Every acknowledged chunk: its media row and journal event, same hash and size; its file."""
    rows: dict[tuple[str, int], MediaRecord] = {
        (record.sitting_id, record.seq): record
        for record in read_media(database)
        if record.kind is Kind.CHUNK
    }
    journaled = read_media_journal(database)
    missing = wrong = unjournaled = 0
    found: list[MediaRecord] = []
    for candidate, seq, sha256, size in chunks:
        sitting = f"{EXAM_ID}/{candidate}/{PART_ID}"
        row = rows.get((sitting, seq))
        if row is None:
            missing += 1
            continue
        if (row.sha256, row.size) != (sha256, size):
            wrong += 1
        else:
            found.append(row)
        if journaled.get((sitting, Kind.CHUNK.value, seq)) != sha256:
            unjournaled += 1
    bad_files = len(verify_files(data_dir, found))
    return {
        "chunks_acked": len(chunks),
        "chunks_stored": len(rows),
        "chunks_missing": missing,
        "chunks_wrong": wrong,
        "chunks_not_journaled": unjournaled,
        "chunk_files_bad": bad_files,
        "chunks_lost": missing + wrong + unjournaled + bad_files,
    }


# -- workloads ------------------------------------------------------------------------------------


def ack_figures(results: list[dict[str, Any]], window: Window, window_s: float) -> dict[str, Any]:
    latencies = merged(results, "latencies_ms")
    return {
        "acks_per_s": round(len(latencies) / window_s, 1),
        "ack_p50_ms": percentile(latencies, 50),
        "ack_p99_ms": percentile(latencies, 99),
        "ack_p99_by_tenth_ms": by_tenth(results, "latencies_ms", 99),
        "server_cpu_cores": round(window.server_cpu_s / max(window.seconds, 1e-9), 3),
        "server_loop_cpu_cores": round(window.server_loop_cpu_s / max(window.seconds, 1e-9), 3),
        "server_children_cpu_cores": round(
            window.server_children_cpu_s / max(window.seconds, 1e-9), 3
        ),
        "generator_cpu_cores": round(window.generator_cpu_s / max(window.seconds, 1e-9), 3),
        "machine_busy_cores": window.machine_busy_cores,
        "server_cpu_us_per_ack": (
            round(window.server_cpu_s / len(latencies) * 1e6, 1) if latencies else None
        ),
        "errors": errors_of(results),
        "generator_lag_p99_ms": max(
            (r["loop_lag_ms"]["p99"] for r in results if "loop_lag_ms" in r), default=None
        ),
    }


def server_health(server: Server) -> dict[str, Any]:
    """The engine's own view at the end of a window: its loop lag, store commit times, the
    file process's counts and the uploads under way and their recent times."""
    with urllib.request.urlopen(f"{server.url}/api/v1/health", timeout=30) as response:
        health = json.load(response)
    return {
        "server_loop_lag_ms": health["loop_lag_ms"],
        "store_commit_ms": health["store"]["recent_commit_ms"],
        "store_queue_wait_ms": health["store"].get("recent_queue_wait_ms"),
        "store_settle_wait_ms": health["store"].get("recent_settle_wait_ms"),
        "collector_pauses_ms": health.get("collector"),
        "file_process": health["store"].get("file_process"),
        "uploads": health.get("uploads"),
    }


def chunk_figures(results: list[dict[str, Any]], window_s: float) -> dict[str, Any]:
    """A/V chunk uploads of an exam day: counts, acknowledged rate and latency."""
    latencies = [x for r in results for x in r.get("chunk_latencies_ms", [])]
    acked = [c for r in results for c in r.get("chunks_acked", [])]
    return {
        "chunks_sent": sum(r.get("chunks_sent", 0) for r in results),
        "chunks_acked": len(acked),
        "chunks_failed": sum(r.get("chunks_failed", 0) for r in results),
        "chunks_turned_away": sum(r.get("chunks_turned_away", 0) for r in results),
        "chunks_waiting_at_end": sum(r.get("chunks_waiting_at_end", 0) for r in results),
        "chunk_connections": sum(r.get("chunk_connections", 0) for r in results),
        "chunks_per_s": round(len(acked) / window_s, 1),
        "chunk_kib_per_s": round(sum(c[3] for c in acked) / window_s / 1024, 1),
        "chunk_p50_ms": percentile(latencies, 50),
        "chunk_p99_ms": percentile(latencies, 99),
    }


async def ceiling_closed(plan: Plan, root: Path) -> Outcome:
    server = start_ceiling(root / "ceiling-closed")
    try:
        shares = [
            {"connections": len(s), "duration_s": plan.closed_s + plan.warmup_s}
            | {"warmup_s": plan.warmup_s}
            for s in split(list(range(plan.closed_connections)), plan.workers)
        ]
        results, window = await drive(
            server, "echo-closed", shares, server.root, window_s=plan.closed_s + plan.warmup_s
        )
    finally:
        server.stop()
    return Outcome(
        "ceiling closed loop",
        {"connections": plan.closed_connections} | ack_figures(results, window, plan.closed_s),
    )


async def ceiling_paced(plan: Plan, root: Path, connections: int) -> Outcome:
    server = start_ceiling(root / f"ceiling-paced-{connections}")
    try:
        shares = [
            {"connections": len(s), "duration_s": plan.exam_day_s, "interval_s": plan.interval_s}
            | {"seed": i, "levels": _sends_levels(plan), "chunks": plan.chunks}
            | media_spec(plan, len(s), connections)
            for i, s in enumerate(split(list(range(connections)), plan.workers))
        ]
        results, window = await drive(
            server, "echo-paced", shares, server.root, window_s=plan.exam_day_s
        )
    finally:
        server.stop()
    figures = {"connections": connections} | ack_figures(results, window, plan.exam_day_s)
    figures["media"] = media_label(plan, connections)
    figures["levels_frames_per_s"] = _levels_per_s(results, plan)
    figures |= chunk_figures(results, plan.exam_day_s)
    figures["rss_per_connection_kib"] = round(
        (window.rss_loaded - window.rss_base) / connections / 1024, 1
    )
    return Outcome(f"ceiling paced {connections}", figures)


FILES_BESIDE_SOCKETS = 500
"""A server's open files besides its sockets (database, logs, pipes, segments), with room."""
HTTP_CONNECTIONS_WHEN_MIXED = 250
"""Keep-alive connections per worker for the sittings left without a media socket."""


def media_sockets(plan: Plan, sittings: int, *, engine: bool = False) -> int:
    """How many of `sittings` send their chunks on a media socket (the rest over HTTP): all, none,
    or (`auto`) as many as the server's open-file limit holds beside one candidate socket each
    and the HTTP connections of the rest (all, for an engine with its media process)."""
    if plan.media != "auto":
        return sittings if plan.media == "socket" else 0
    if engine and plan.media_process:
        return sittings
    spare = resource.getrlimit(resource.RLIMIT_NOFILE)[1] - FILES_BESIDE_SOCKETS - sittings
    if spare >= sittings:
        return sittings
    return max(0, spare - HTTP_CONNECTIONS_WHEN_MIXED * plan.workers)


def media_label(plan: Plan, sittings: int, *, engine: bool = False) -> str:
    on_sockets = media_sockets(plan, sittings, engine=engine)
    where = " (media process)" if engine and plan.media_process and on_sockets else ""
    if on_sockets in (0, sittings):
        return ("socket" if on_sockets else "http") + where
    return f"socket {on_sockets}{where}, http {sittings - on_sockets}"


def media_spec(plan: Plan, share: int, total: int, *, engine: bool = False) -> dict[str, Any]:
    """A worker's media settings for its `share` of `total` sittings."""
    on_sockets = media_sockets(plan, total, engine=engine)
    spec: dict[str, Any] = {"media_sockets": round(on_sockets * share / total)}
    if 0 < on_sockets < total:
        spec["chunk_connections"] = HTTP_CONNECTIONS_WHEN_MIXED
    return spec


def _sends_levels(plan: Plan) -> str | bool:
    """The spec's `levels`: False, or the socket they go on (`media` where there is one)."""
    return plan.levels and "levels" in wire.CLIENT_MESSAGES and plan.levels_on


def _levels_per_s(results: list[dict[str, Any]], plan: Plan) -> float:
    sent = sum(int(result.get("levels_sent", 0)) for result in results)
    return round(sent / plan.exam_day_s, 1)


def _sitting_shares(codes: list[str], workers: int, extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"codes": share, "part": PART_ID, "language": "kk" if i % 2 == 0 else "ru", "seed": i}
        | extra
        for i, share in enumerate(split(codes, workers))
    ]


async def engine_closed(plan: Plan, root: Path) -> Outcome:
    count = plan.closed_connections
    server = start_engine(root / "closed-loop", candidates=count)
    try:
        shares = _sitting_shares(
            read_codes(server),
            plan.workers,
            {"duration_s": plan.closed_s + plan.warmup_s, "warmup_s": plan.warmup_s},
        )
        results, window = await drive(
            server,
            "closed-loop",
            shares,
            server.root,
            window_s=plan.closed_s + plan.warmup_s,
            health=True,
        )
    finally:
        server.stop()
    figures = {"sittings": count} | ack_figures(results, window, plan.closed_s)
    figures |= window.health or {}
    figures["durability"] = check_durable(server, merged(results, "acked"))
    return Outcome("engine closed loop", figures)


def read_staff(server: Server) -> list[tuple[str, str, str]]:
    """(login, password, site) of every proctor, from DATA/access-codes/EXAM-staff.csv."""
    assert server.data_dir is not None
    path = server.data_dir / "access-codes" / f"{EXAM_ID}-staff.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["login"], row["password"], row["sites"]) for row in csv.DictReader(handle)]


async def exam_day(plan: Plan, root: Path, sittings: int, *, watched: bool = False) -> Outcome:
    name = f"exam-day-{sittings}" + ("-watched" if watched else "")
    server = start_engine(
        root / name,
        candidates=sittings,
        proctors=watched,
        media_process=plan.media_process,
    )
    try:
        shares = _sitting_shares(
            read_codes(server),
            plan.workers,
            {
                "duration_s": plan.exam_day_s,
                "interval_s": plan.interval_s,
                "levels": _sends_levels(plan),
                "chunks": plan.chunks,
            },
        )
        for share in shares:
            share |= media_spec(plan, len(share["codes"]), sittings, engine=True)
        if watched:
            staff = read_staff(server)
            shares.append({"mode": "watch", "staff": staff, "duration_s": plan.exam_day_s})
        results, window = await drive(
            server, "exam-day", shares, server.root, window_s=plan.exam_day_s, health=True
        )
    finally:
        server.stop()
    figures = {"sittings": sittings} | ack_figures(results, window, plan.exam_day_s)
    figures["media"] = media_label(plan, sittings, engine=True)
    figures |= window.health or {}
    errors = merged(results, "clock_errors_ms")
    figures["clock_error_p99_ms"] = percentile([abs(e) for e in errors], 99)
    figures["clock_error_p50_ms"] = percentile([abs(e) for e in errors], 50)
    figures["clock_samples"] = len(errors)
    for name in ("clock_delays_ms", "prep_clock_delays_ms"):
        delays = merged(results, name)
        figures[name.replace("_ms", "_p99_ms")] = percentile(delays, 99)
        figures[name.replace("delays_ms", "count")] = len(delays)
    figures["generator_prep_lag_p99_ms"] = max(
        (r["prep_loop_lag_ms"]["p99"] for r in results if "prep_loop_lag_ms" in r), default=0.0
    )
    figures["levels_frames_per_s"] = _levels_per_s(results, plan)
    figures |= chunk_figures(results, plan.exam_day_s)
    figures["rss_base_mib"] = round(window.rss_base / 2**20, 1)
    figures["rss_loaded_mib"] = round(window.rss_loaded / 2**20, 1)
    figures["rss_peak_mib"] = round(window.rss_peak / 2**20, 1)
    figures["rss_per_sitting_kib"] = round(
        (window.rss_loaded - window.rss_base) / sittings / 1024, 1
    )
    figures["cpu_us_per_sitting_s"] = round(
        window.server_cpu_s / max(window.seconds, 1e-9) / sittings * 1e6, 1
    )
    if watched:
        delays = merged(results, "feed_delays_ms")
        figures["watchers"] = len(read_staff(server))
        figures["feed_frames"] = len(delays)
        figures["feed_delay_p50_ms"] = percentile(delays, 50)
        figures["feed_delay_p99_ms"] = percentile(delays, 99)
        figures["feed_kib_per_s"] = round(
            sum(r.get("feed_bytes", 0) for r in results) / plan.exam_day_s / 1024, 1
        )
    figures["durability"] = check_durable(
        server, merged(results, "acked"), merged(results, "chunks_acked") if plan.chunks else None
    )
    return Outcome(f"exam day {sittings}" + (" + watchers" if watched else ""), figures)


async def start_storm(plan: Plan, root: Path) -> Outcome:
    count = plan.start_storm
    await write_earlier_days(root / "start-storm" / "data", plan.earlier_sittings)
    server = start_engine(root / "start-storm", candidates=count)
    try:
        shares = _sitting_shares(read_codes(server), plan.workers, {})
        results, window = await drive(server, "start-storm", shares, server.root, window_s=None)
    finally:
        server.stop()
    done = merged(results, "completion_s")
    return Outcome(
        "start storm",
        {
            "candidates": count,
            "earlier_sittings": plan.earlier_sittings,
            "delivered": len(done),
            "all_delivered_s": round(max(done), 3) if done else None,
            "p50_s": percentile(done, 50),
            "server_cpu_s": round(window.server_cpu_s, 2),
            "generator_cpu_s": round(window.generator_cpu_s, 2),
            "machine_busy_cores": window.machine_busy_cores,
            "rss_peak_mib": round(window.rss_peak / 2**20, 1),
            "errors": errors_of(results),
        },
    )


async def reconnect_storm(plan: Plan, root: Path) -> Outcome:
    count = plan.reconnect_storm
    server = start_engine(root / "reconnect-storm", candidates=count)
    try:
        shares = _sitting_shares(read_codes(server), plan.workers, {"answers_before": 3})
        results, window = await drive(server, "reconnect-storm", shares, server.root, window_s=None)
    finally:
        server.stop()
    done = merged(results, "completion_s")
    figures = {
        "sittings": count,
        "resumed": len(done),
        "all_resumed_s": round(max(done), 3) if done else None,
        "p50_s": percentile(done, 50),
        "server_cpu_s": round(window.server_cpu_s, 2),
        "generator_cpu_s": round(window.generator_cpu_s, 2),
        "machine_busy_cores": window.machine_busy_cores,
        "errors": errors_of(results),
    }
    figures["durability"] = check_durable(server, merged(results, "acked"))
    return Outcome("reconnect storm", figures)


def offline_figures(plan: Plan) -> list[Outcome]:
    return [
        Outcome("offline forms", offline.bench_forms(plan.forms, bank_items=2_000)),
        Outcome("offline forms, 10,000-item bank", offline.bench_forms(plan.forms)),
        Outcome("offline scoring", offline.bench_scoring(plan.scored)),
        Outcome("offline scoring, ResponseMatrix.group_counts", offline.bench_group_counts()),
        Outcome("levels frame through the detectors", detectors_bench.measure()),
    ]


async def store_alone(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="examhall-bench-store-") as folder:
        return await store_bench.measure(plan.closed_connections, plan.closed_s, Path(folder))


# -- the report -----------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "–"
    return f"{numerator / denominator:.2f}"


def summary_rows(outcomes: dict[str, Outcome], plan: Plan) -> list[tuple[str, str, str, str]]:
    """(figure, target, measured, ratio to the ceiling) for the table."""
    rows: list[tuple[str, str, str, str]] = []
    ceiling = outcomes.get("ceiling closed loop")
    engine = outcomes.get("engine closed loop")
    c = ceiling.figures if ceiling else {}
    if ceiling:
        rows.append(("ceiling closed loop, acks/s", "", f"{c['acks_per_s']}", "1.00"))
        rows.append(("ceiling closed loop, p50 / p99 ms", "", _pair(c), ""))
    if engine:
        e = engine.figures
        rows.append(
            (
                f"closed loop {e['sittings']} sittings, durable acks/s",
                "≥ 50 % of ceiling",
                f"{e['acks_per_s']}",
                ratio(e["acks_per_s"], c.get("acks_per_s")),
            )
        )
        rows.append(
            (
                "closed loop, ack p50 / p99 ms",
                "",
                _pair(e),
                f"{ratio(e['ack_p50_ms'], c.get('ack_p50_ms'))} / "
                f"{ratio(e['ack_p99_ms'], c.get('ack_p99_ms'))}",
            )
        )
        rows.append(("closed loop, lost", "0", _lost(e), ""))
        rows.append(("closed loop, " + _stalls_label(), "", _stalls(e), ""))
    for size in plan.exam_day_sizes:
        day = outcomes.get(f"exam day {size}")
        if day is None:
            continue
        d = day.figures
        paced = outcomes.get(f"ceiling paced {size}")
        p = paced.figures if paced else {}
        target = "≤ 50 ms" if size == 10000 else ""
        rows.append(
            (
                f"exam day {size}: ack p50 / p99 ms",
                f"p99 {target}".strip() if target else "",
                _pair(d),
                f"{ratio(d['ack_p50_ms'], p.get('ack_p50_ms'))} / "
                f"{ratio(d['ack_p99_ms'], p.get('ack_p99_ms'))}",
            )
        )
        if p:
            rows.append(
                (
                    f"ceiling paced {size} (the same answers, levels and chunks): ack p50 / p99 "
                    "ms; machine busy cores",
                    "",
                    f"{_pair(p)}; {p.get('machine_busy_cores')}",
                    "1.00",
                )
            )
        rows.append((f"exam day {size}: acks/s", "", f"{d['acks_per_s']}", ""))
        if "ack_p99_by_tenth_ms" in d:
            rows.append(
                (
                    f"exam day {size}: ack p99 ms in each tenth of the window",
                    "",
                    " ".join(
                        f"{value:.0f}" for value in d["ack_p99_by_tenth_ms"] if value is not None
                    ),
                    "",
                )
            )
        rows.append((f"exam day {size}: " + _stalls_label(), "", _stalls(d), ""))
        rows.append(
            (
                f"exam day {size}: clock error p99 ms",
                "≤ 250 ms" if size == 10000 else "",
                f"{d['clock_error_p99_ms']}",
                "",
            )
        )
        if "clock_delays_p99_ms" in d:
            rows.append(
                (
                    f"exam day {size}: clock frames' delay p99 ms, in the window / preparing",
                    "",
                    f"{d['clock_delays_p99_ms']} / {d['prep_clock_delays_p99_ms']}",
                    "",
                )
            )
        rows.append(
            (
                f"exam day {size}: RSS per sitting KiB",
                "≤ 48 KiB",
                f"{d['rss_per_sitting_kib']}",
                ratio(d["rss_per_sitting_kib"], p.get("rss_per_connection_kib")),
            )
        )
        rows.append(
            (
                f"exam day {size}: server CPU (cores; on its loop) / µs per sitting-second",
                "",
                f"{d['server_cpu_cores']} ({d.get('server_loop_cpu_cores')}) / "
                f"{d['cpu_us_per_sitting_s']}",
                ratio(d["server_cpu_cores"], p.get("server_cpu_cores")),
            )
        )
        if d.get("chunks_sent"):
            rows.append(
                (
                    f"exam day {size}: A/V chunks over {d.get('media')} acked / sent (failed; "
                    "turned away, of them still waiting at the end); p50 / p99 ms",
                    "",
                    f"{d['chunks_acked']} / {d['chunks_sent']} ({d['chunks_failed']}; "
                    f"{d.get('chunks_turned_away', 0)}, {d.get('chunks_waiting_at_end', 0)}); "
                    f"{d['chunk_p50_ms']} / {d['chunk_p99_ms']}",
                    f"{ratio(d['chunk_p50_ms'], p.get('chunk_p50_ms'))} / "
                    f"{ratio(d['chunk_p99_ms'], p.get('chunk_p99_ms'))}",
                )
            )
        rows.append((f"exam day {size}: lost", "0", _lost(d), ""))
    for size in plan.watched_sizes:
        seen = outcomes.get(f"exam day {size} + watchers")
        if seen is None:
            continue
        w = seen.figures
        rows.append(
            (
                f"exam day {size} + {w['watchers']} watchers: feed delay p50 / p99 ms",
                "",
                f"{w['feed_delay_p50_ms']} / {w['feed_delay_p99_ms']}",
                "",
            )
        )
        rows.append(
            (
                f"exam day {size} + watchers: ack p50 / p99 ms, clock error p99 ms",
                "",
                f"{_pair(w)}, {w['clock_error_p99_ms']}",
                "",
            )
        )
        rows.append((f"exam day {size} + watchers: lost", "0", _lost(w), ""))
    storm = outcomes.get("start storm")
    if storm:
        s = storm.figures
        rows.append(
            (
                f"start storm: {s['delivered']}/{s['candidates']} forms delivered"
                f" ({s.get('earlier_sittings', 0)} earlier sittings in the store), s",
                "≤ 10 s",
                f"{s['all_delivered_s']}",
                "",
            )
        )
    resumed = outcomes.get("reconnect storm")
    if resumed:
        r = resumed.figures
        rows.append(
            (
                f"reconnect storm: {r['resumed']}/{r['sittings']} resumed, s",
                "≤ 5 s",
                f"{r['all_resumed_s']}",
                "",
            )
        )
        rows.append(("reconnect storm: lost", "0", _lost(r), ""))
    for name in ("offline forms", "offline forms, 10,000-item bank"):
        forms = outcomes.get(name)
        if forms:
            f = forms.figures
            rows.append(
                (
                    f"assemble {f['forms']:,} unique {f['items_per_form']}-item forms "
                    f"({f['bank']}), s",
                    "≤ 5 s",
                    f"{f['seconds']} ({f['unique']:,} unique)",
                    "",
                )
            )
    scoring = outcomes.get("offline scoring")
    if scoring:
        g = scoring.figures
        rows.append(
            (
                f"score {g['candidates']:,} × {g['items_per_form']} with KZ rules, s",
                "≤ 2 s",
                f"{g['seconds']}",
                "",
            )
        )
    grouped = outcomes.get("offline scoring, ResponseMatrix.group_counts")
    if grouped:
        g = grouped.figures
        rows.append(
            (
                f"  the same through ResponseMatrix.group_counts ({g['candidates']:,}), s",
                "",
                f"{g['seconds']}",
                "",
            )
        )
    levels = outcomes.get("levels frame through the detectors")
    if levels:
        f = levels.figures
        rows.append(
            (
                "levels frame through the detectors, µs (cores at 10,000 sittings)",
                "",
                f"{f['us_per_frame']} ({f['cores_at_10000_sittings']})",
                "",
            )
        )
    alone = outcomes.get("store alone")
    if alone:
        a = alone.figures
        rows.append(
            (
                f"store alone: durable records/s ({a['sittings']} sittings, closed loop)",
                "",
                f"{a['records_per_s']} ({a['cpu_us_per_record']} µs CPU each)",
                ratio(a["records_per_s"], c.get("acks_per_s")),
            )
        )
    return rows


def _pair(figures: dict[str, Any]) -> str:
    return f"{figures['ack_p50_ms']} / {figures['ack_p99_ms']}"


def _stalls_label() -> str:
    return "p99 ms of server loop lag / store commit / generator loop lag"


def _stalls(figures: dict[str, Any]) -> str:
    """Where the waits were: the engine's loop, its group commits, or the generator."""
    lag, commit = figures.get("server_loop_lag_ms"), figures.get("store_commit_ms")
    return " / ".join(
        "–" if value is None else f"{value}"
        for value in (
            lag["p99"] if lag else None,
            commit["p99"] if commit else None,
            figures.get("generator_lag_p99_ms"),
        )
    )


def _lost(figures: dict[str, Any]) -> str:
    durability = figures.get("durability", {})
    text = f"{durability.get('lost')} of {durability.get('acked')} ({durability.get('journal')})"
    if "chunks_lost" in durability:
        text += f"; chunks {durability['chunks_lost']} of {durability['chunks_acked']}"
    return text


def render(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("figure", "target", "measured", "ratio to ceiling")
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------

WORKLOADS = (
    "ceiling",
    "closed-loop",
    "exam-day",
    "watchers",
    "start-storm",
    "reconnect-storm",
    "offline",
)


async def run(plan: Plan, only: set[str], root: Path, log: Callable[[str], None]) -> list[Outcome]:
    outcomes: list[Outcome] = []

    async def step(coroutine: Any) -> None:
        started = time.monotonic()
        outcome: Outcome = await coroutine
        outcome.figures["wall_s"] = round(time.monotonic() - started, 1)
        outcomes.append(outcome)
        log(f"{outcome.name}: {json.dumps(outcome.figures, ensure_ascii=False)}")

    if "ceiling" in only or "closed-loop" in only:
        await step(ceiling_closed(plan, root))
    if "closed-loop" in only:
        await step(engine_closed(plan, root))
    if "exam-day" in only:
        for size in plan.exam_day_sizes:
            await step(ceiling_paced(plan, root, size))
            await step(exam_day(plan, root, size))
    if "watchers" in only:
        for size in plan.watched_sizes:
            await step(exam_day(plan, root, size, watched=True))
    if "start-storm" in only:
        await step(start_storm(plan, root))
    if "reconnect-storm" in only:
        await step(reconnect_storm(plan, root))
    if "offline" in only:
        for outcome in [*offline_figures(plan), Outcome("store alone", await store_alone(plan))]:
            log(f"{outcome.name}: {json.dumps(outcome.figures, ensure_ascii=False)}")
            outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter windows")
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help=f"comma-separated subset of {WORKLOADS}"
    )
    parser.add_argument("--workers", type=int, default=None, help="load-generator processes")
    parser.add_argument(
        "--sizes", default=None, help="exam-day sitting counts, e.g. 10000 (default: the plan's)"
    )
    parser.add_argument(
        "--no-levels", action="store_true", help="exam-day sittings send no audio levels"
    )
    parser.add_argument(
        "--levels-on",
        choices=("media", "candidate"),
        default="media",
        help="the socket exam-day levels go on (media: the sitting's media socket, as the page)",
    )
    parser.add_argument(
        "--no-chunks", action="store_true", help="exam-day sittings upload no A/V chunks"
    )
    parser.add_argument(
        "--media",
        choices=("auto", "socket", "http"),
        default="auto",
        help="how exam-day chunks travel (auto: on media sockets as far as the file limit allows)",
    )
    parser.add_argument(
        "--media-in-process",
        action="store_true",
        help="the engine serves media sockets from its serving process, not its media process",
    )
    parser.add_argument(
        "--earlier",
        type=int,
        default=None,
        help="final sittings of earlier exam days in the start storm's store (0: a fresh store)",
    )
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep data directories and logs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.workers:
        plan = replace(plan, workers=args.workers)
    if args.sizes:
        sizes = tuple(int(size) for size in args.sizes.split(","))
        plan = replace(plan, exam_day_sizes=sizes, watched_sizes=sizes)
    if args.no_levels:
        plan = replace(plan, levels=False)
    plan = replace(plan, levels_on=args.levels_on)
    if args.no_chunks:
        plan = replace(plan, chunks=False)
    plan = replace(plan, media=args.media, media_process=not args.media_in_process)
    if args.earlier is not None:
        plan = replace(plan, earlier_sittings=args.earlier)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}; choose from {WORKLOADS}")
    root = args.out or Path(tempfile.mkdtemp(prefix="examhall-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "bench.log"

    def log(line: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {line}"
        print(stamped, flush=True)
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(stamped + "\n")

    log(f"examhall bench ({'quick' if args.quick else 'full'}) in {root}; load {os.getloadavg()}")
    started = time.monotonic()
    outcomes = asyncio.run(run(plan, only, root, log))
    by_name = {outcome.name: outcome for outcome in outcomes}
    table = render(summary_rows(by_name, plan))
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    result = {
        "command": " ".join([command, *(argv if argv is not None else sys.argv[1:])]),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "plan": plan.__dict__,
        "outcomes": {outcome.name: outcome.figures for outcome in outcomes},
        "wall_s": round(time.monotonic() - started, 1),
    }
    (root / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (root / "report.md").write_text(table + "\n", encoding="utf-8")
    print()
    print(table)
    print(f"\nresults: {root / 'results.json'}  table: {root / 'report.md'}")
    if not args.keep:
        _tidy(root)
    lost = sum(
        int(outcome.figures.get("durability", {}).get(key, 0) or 0)
        for outcome in outcomes
        for key in ("lost", "chunks_lost")
    )
    return 1 if lost else 0


def _tidy(root: Path) -> None:
    """Drop the data directories (they can be large); keep logs, specs and results."""
    import shutil

    for data in root.glob("*/data"):
        shutil.rmtree(data, ignore_errors=True)
    for banks in root.glob("*/banks"):
        shutil.rmtree(banks, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
