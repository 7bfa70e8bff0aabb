"""What the benchmark reads from /proc: memory and CPU time of a process and
of the whole machine, and a process's children."""

import os
import resource
from pathlib import Path


def child_pids(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces; the fields after it do not.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def proc_status_kib(pid, key):
    """VmRSS, VmHWM, ... of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_seconds(pid):
    """User and system CPU time of a process, all its threads, dead or alive."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return utime / CLOCK_TICKS, stime / CLOCK_TICKS


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_task_cpu_seconds():
    """CPU time the whole machine spent in processes (user, nice, system;
    interrupts and idle left out), summed over all cores."""
    user, nice, system = Path("/proc/stat").read_text().split()[1:4]
    return (int(user) + int(nice) + int(system)) / CLOCK_TICKS


def own_cpu_seconds():
    """CPU time of this driver and of the children it has reaped (wrk)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def proc_meminfo_kib(key):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0
