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


def _cpu_s(stat_path: str) -> float:
    stat = Path(stat_path).read_text()
    # The command name (field 2) may hold spaces; everything after its closing ")" is fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def sample(pid: int) -> ProcSample:
    cpu_s = _cpu_s(f"/proc/{pid}/stat")
    main_thread_cpu_s = _cpu_s(f"/proc/{pid}/task/{pid}/stat")
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
            break
    return ProcSample(cpu_s, rss_kib * 1024, main_thread_cpu_s)
