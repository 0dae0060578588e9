"""Where a process spends its CPU: its CPU seconds from /proc, and py-spy's samples of
the worker's Python stacks, summarised by function (own time, and time including what it
calls) so a profile can be read in the results rather than in a flame graph viewer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(parent: int) -> float:
    """A server that forks a process per connection (PostgreSQL): the parent's CPU, its
    living children's, and what the children it has reaped used (its cutime, cstime)."""
    fields = Path(f"/proc/{parent}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / TICKS
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone since the listing
            continue
        if int(child[1]) == parent:
            total += (int(child[11]) + int(child[12])) / TICKS
    return total


class Sampler:
    """``py-spy record`` attached to a running process, until ``stop``."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.out = out
        self.proc = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
             "--nonblocking", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
        _, err = self.proc.communicate(timeout=60)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode()[-1000:]}")


def _frame(raw: str, root: str) -> str:
    """``func (path:line)`` -> ``func (relative/path)``, without the line number."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if path.startswith(root):
        path = path[len(root):].lstrip("/")
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{name} ({path})"


def summarise(raw: Path, root: Path, top: int = 25) -> str:
    """A markdown summary: the functions with most own samples, and our own functions by
    samples including their callees."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f, str(root)) for f in stack.split(";") if ".py:" in f]
        if not frames:
            continue
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if not total:
        return "no samples\n"
    ours = Counter({f: n for f, n in inclusive.items()
                    if f.split(" (", 1)[1].startswith("offboarding/")})
    out = [f"{total} samples.", "", "| own time | function |", "|---|---|"]
    out += [f"| {n / total:.1%} | `{f}` |" for f, n in own.most_common(top)]
    out += ["", "| including callees | our function |", "|---|---|"]
    out += [f"| {n / total:.1%} | `{f}` |" for f, n in ours.most_common(top)]
    return "\n".join(out) + "\n"
