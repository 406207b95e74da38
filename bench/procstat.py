"""CPU time and resident memory of a process, read from /proc (Linux only, no dependency)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float
    """user + system CPU seconds since the process started, all threads."""
    rss_bytes: int
    main_thread_cpu_s: float = 0.0
    """…of its main thread alone: a server's event loop, which every socket waits on."""
    children_cpu_s: float = 0.0
    """…of its child processes now running (the engine's media and file processes), which
    `cpu_s` and `rss_bytes` include."""
    children_rss_bytes: int = 0


def _cpu_s(stat_path: str) -> float:
    stat = Path(stat_path).read_text()
    # The command name (field 2) may hold spaces; everything after its closing ")" is fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except FileNotFoundError:
        return []


def sample(pid: int) -> ProcSample:
    """The process and its children now running: one that ended meanwhile is left out."""
    cpu_s = _cpu_s(f"/proc/{pid}/stat")
    main_thread_cpu_s = _cpu_s(f"/proc/{pid}/task/{pid}/stat")
    rss_bytes = _rss_bytes(pid)
    children_cpu_s, children_rss = 0.0, 0
    for child in _children(pid):
        try:
            children_cpu_s += _cpu_s(f"/proc/{child}/stat")
            children_rss += _rss_bytes(child)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return ProcSample(
        cpu_s + children_cpu_s,
        rss_bytes + children_rss,
        main_thread_cpu_s,
        children_cpu_s,
        children_rss,
    )
