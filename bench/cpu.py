"""CPU seconds used by a process tree, from /proc: a cost per request that, unlike
throughput, does not shrink when other programs on the machine take the cores."""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU of `root` and its children, counting children that already exited.

    Uvicorn's workers and PostgreSQL's backends are direct children of their parent process.
    """
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process exited meanwhile
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid == root:
            # utime, stime, and cutime, cstime of the children it has reaped.
            ticks += sum(int(value) for value in fields[11:15])
        elif parent == root:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / TICKS_PER_SECOND


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (idle and iowait excluded)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"
