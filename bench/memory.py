"""A process's peak memory, as the kernel counts it since the process's program started.

``ru_maxrss`` (from ``getrusage`` or ``os.wait4``) is not that: Linux carries a process's
high-water mark across ``exec``, so a child started by a big parent reports the parent's size
at the fork however little it used itself (a ``python -c pass`` started from a 300 MB bench
reports about 300 MB). ``VmHWM`` in ``/proc/<pid>/status`` belongs to the address space that
``exec`` made, so it is the program's own peak.
"""

from __future__ import annotations


def peak_mb(pid: int | str = "self") -> float | None:
    """``VmHWM`` of ``pid`` in MB (None once it has exited, or off Linux)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
