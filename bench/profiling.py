"""Where a process spends its CPU: its CPU seconds from /proc, and py-spy's samples of
the worker's Python stacks, summarised by function (own time, and time including what it
calls) so a profile can be read in the results rather than in a flame graph viewer."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

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
            # --gil: only the thread holding the GIL, so a sample is Python using the CPU,
            # not a thread waiting in a system call (fsync, a queue) or for the GIL.
            [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
             "--nonblocking", "--gil", "--output", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # seen once: its profile written, py-spy still there
            self.proc.kill()
            _, err = self.proc.communicate()
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
    for line in raw.read_text(errors="replace").splitlines():
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


def write_profile(raw: Path, n: int, folder: Path) -> None:
    """``profile-N.md`` (the summary) and ``profile-N.svg`` (a flame graph) in ``folder``,
    from py-spy's raw stacks, which are left where they are for a closer look."""
    root = folder.parent
    (folder / f"profile-{n}.md").write_text(
        f"# Worker profile, N = {n}\n\npy-spy, 100 samples/s, while the worker ran {n} "
        f"offboardings; the flame graph is [profile-{n}.svg](profile-{n}.svg).\n\n"
        f"{summarise(raw, root)}")
    (folder / f"profile-{n}.svg").write_text(flame_graph(raw, root, f"Worker, N = {n}"))
    print(f"py-spy's raw stacks are in {raw}", file=sys.stderr)


def flame_graph(raw: Path, root: Path, title: str, width: int = 1200,
                min_share: float = 0.002) -> str:
    """A flame graph as a standalone SVG: each frame a box as wide as its share of the
    samples, its callees above it; boxes under ``min_share`` are left out. Hovering a box
    shows its function and share."""
    tree: dict[str, Any] = {"n": 0, "kids": {}}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        node = tree
        node["n"] += int(count)
        for frame in stack.split(";"):
            node = node["kids"].setdefault(_frame(frame, str(root)), {"n": 0, "kids": {}})
            node["n"] += int(count)
    total = tree["n"] or 1
    row, boxes, depth = 16, [], [0]

    def place(node: dict[str, Any], x: float, level: int) -> None:
        for name, kid in sorted(node["kids"].items()):
            share = kid["n"] / total
            if share >= min_share:
                w = share * width
                depth[0] = max(depth[0], level + 1)
                hue = 20 + zlib.crc32(name.split(" (", 1)[-1].encode()) % 40
                label = escape(name if len(name) * 7 < w else name[: int(w / 7)])
                boxes.append((level, x, w, hue, escape(name), share, label))
                place(kid, x, level + 1)
            x += share * width

    place(tree, 0.0, 0)
    height = (depth[0] + 2) * row
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="monospace" font-size="11">',
           f'<text x="4" y="12">{escape(title)}: {total} samples</text>']
    for level, x, w, hue, name, share, label in boxes:
        y = height - (level + 1) * row
        out.append(f'<g><title>{name}: {share:.1%}</title><rect x="{x:.1f}" y="{y}" '
                   f'width="{w:.1f}" height="{row - 1}" fill="hsl({hue},80%,60%)"/>'
                   f'<text x="{x + 2:.1f}" y="{y + 11}">{label if w > 30 else ""}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
