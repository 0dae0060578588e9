"""``make bench``: the whole benchmark, on this machine, against real servers.

For each N of the series (default 300), ``--reps`` pairs: N offboardings, and the
same-shape skeleton with the same N (bench/throughput.py), each phase on a fresh stack,
the order alternating from one pair to the next; unless ``--no-floor``, each pair also
runs N offboardings on the floor (bench/floor.py: activities that do no work). Then
``--open`` offboardings left waiting on their notice (bench/open_offboardings.py), the
email path, plain and over STARTTLS + AUTH (bench/email_path.py), and the approvals
portal under load (bench/portal_load.py).
Every figure with a target, and whether it was met, goes to ``bench/results.md`` (the
portal's tables to ``results-portal.md``), with a chart of throughput and latency against
N in ``bench/results.png``. Every process it starts is stopped at the end.

``--server cluster``: each repetition's throughput run is made on the dev server and then,
with the same N, on a real cluster (devtools/cluster.py: two temporal-server hosts on
PostgreSQL), side by side with the ratio cluster / dev, in ``bench/results-cluster.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from bench import (
    email_path,
    open_offboardings,
    portal_load,
    portal_report,
    profiling,
    throughput,
)
from bench.report import chart, cluster_report, report
from bench.skeleton import Shape
from bench.stack import Stack, fresh_stack, say
from bench.throughput import percentile
from devtools.cluster import NUM_HISTORY_SHARDS, Cluster

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def on_fresh_stack(work: Callable[[Stack], Coroutine[Any, Any, T]],
                   storage: str = "filesystem") -> T:
    """Runs ``work`` on servers of its own (bench/stack.py's ``fresh_stack``)."""
    async def inside() -> T:
        async with fresh_stack(storage) as stack:
            return await work(stack)
    return asyncio.run(inside())


def on_cluster(work: Callable[[Stack], Coroutine[Any, Any, T]],
               storage: str = "filesystem") -> T:
    """``work`` on a fresh cluster (devtools/cluster.py) and fresh SMTP, SCIM and worker
    processes; everything is removed afterwards, or kept and named when the work failed."""
    tmp = Path(tempfile.mkdtemp(prefix="offboarding-bench-"))
    tmp.chmod(0o711)  # PostgreSQL runs as its own user, under it (devtools/postgres.py)

    async def run() -> T:
        async with Cluster(base=tmp) as cluster:
            stack = Stack(tmp, storage, cluster=cluster)
            try:
                stack.start("bench-offboarding")
                return await work(stack)
            except BaseException:
                cluster.keep = True
                raise
            finally:
                stack.close()

    try:
        result = asyncio.run(run())
    except BaseException:
        say(f"failed: the logs are kept in {tmp}")
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def loaded(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work``'s result with the machine's 1-minute load average before and after it:
    what else was running shows in the throughput, less in CPU per offboarding."""
    before = os.getloadavg()[0]
    result = work()
    return {**result, "load": (before, os.getloadavg()[0])}


async def both(n: int, day_ms: int, stack: Stack) -> dict[str, Any]:
    """The offboardings and then the skeleton on one stack (the cluster's runs: a fresh
    cluster for each phase would double a long start)."""
    real = await throughput.offboardings(n, day_ms, stack)
    return {**real, "skeleton": await throughput.skeleton(n, real["shape"], stack)}


def interleaved(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``args.reps`` pairs of N offboardings and N skeletons (and N on the floor, between
    them), each phase on a fresh stack, the order alternating (offboardings first in the
    first pair: the skeleton copies their shape), so a noisy minute or a warming machine
    falls on every side."""
    runs: list[dict[str, Any]] = []
    shape = None
    phases = ("real", "floor", "skeleton") if args.floor else ("real", "skeleton")
    for rep in range(args.reps):
        order = phases if rep % 2 == 0 or shape is None else phases[::-1]
        pair: dict[str, Any] = {"order": order}
        before = os.getloadavg()[0]
        for phase in order:
            what = {"real": "offboardings", "floor": "the floor"}.get(phase, "skeleton")
            say(f"== N={n}, pair {rep + 1}/{args.reps}: {what}")
            if phase == "real":
                # A path py-spy creates itself, so a profile it never wrote is noticed.
                raw = Path(tempfile.mkdtemp(prefix="py-spy-")) / "stacks.txt" \
                    if args.profile and rep == 0 else None
                pair |= on_fresh_stack(functools.partial(
                    throughput.offboardings, n, args.day_ms, profile=raw), args.storage)
                shape = pair["shape"]
                if raw is not None:
                    profiling.write_profile(raw, n, ROOT / "bench")
            elif phase == "floor":
                floor = on_fresh_stack(functools.partial(
                    throughput.offboardings, n, args.day_ms, floor=()), args.storage)
                pair["floor"] = floor["real"]
                # Only a floor that took the offboardings' path measures their workflow.
                pair["floor_path"] = shape is None or counts(floor["shape"]) == counts(shape)
            else:
                assert shape is not None
                pair["skeleton"] = on_fresh_stack(functools.partial(
                    throughput.skeleton, n, shape), args.storage)
        pair["load"] = (before, os.getloadavg()[0])
        runs.append(pair)
    return runs


PROCESSES = ("worker", "server", "db", "scim", "bench")
"""Whose CPU each phase measures (bench/stack.py's counters)."""


def summarize(n: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median
    real = [r["real"] for r in runs]
    skel = [r["skeleton"] for r in runs]
    return {
        "n": n,
        "reps": len(runs),
        "real_per_min": med(p.per_minute for p in real),
        "skel_per_min": med(p.per_minute for p in skel),
        "ratio": med(a.per_minute / b.per_minute for a, b in zip(real, skel, strict=True)),
        "ratios": [a.per_minute / b.per_minute for a, b in zip(real, skel, strict=True)],
        "worker_x": med(a.cpu["worker"] / b.cpu["worker"] for a, b in zip(real, skel, strict=True)),
        "server_x": med(a.cpu["server"] / b.cpu["server"] for a, b in zip(real, skel, strict=True)),
        "real_seconds": med(p.seconds for p in real),
        "real_acts_per_s": med(p.activities / p.seconds for p in real),
        "skel_acts_per_s": med(p.activities / p.seconds for p in skel),
        "real_p50": med(p.percentile(.5) for p in real),
        "real_p95": med(p.percentile(.95) for p in real),
        "real_p99": med(p.percentile(.99) for p in real),
        "skel_p50": med(p.percentile(.5) for p in skel),
        "skel_p99": med(p.percentile(.99) for p in skel),
        "human_p50_ms": med(percentile(r["human"], .5) for r in runs) * 1000,
        "human_p95_ms": med(percentile(r["human"], .95) for r in runs) * 1000,
        "human_p99_ms": med(percentile(r["human"], .99) for r in runs) * 1000,
        "load_before": med(r.get("load", (float("nan"),) * 2)[0] for r in runs),
        "load_after": med(r.get("load", (float("nan"),) * 2)[1] for r in runs),
        **{f"{tag}_{proc}_cpu_ms": med(p.cpu[proc] for p in phases) * 1000
           for tag, phases in (("real", real), ("skel", skel))
           for proc in PROCESSES},
        **floor_figures(runs),
    }


def counts(shape: Shape) -> dict[str, int]:
    """The steps a path is made of; not the visibility upserts, which a busy worker
    coalesces (17 or 18 in one offboarding, by timing)."""
    return {kind: shape.count(kind) for kind in ("activity", "timer", "update")}


def floor_figures(runs: list[dict[str, Any]]) -> dict[str, float]:
    """What the floor costs, against the skeleton of its own pair (medians of the pairs;
    none when the run had none): the part of the worker's ratio no cut to the activities
    can remove."""
    with_floor = [r for r in runs if "floor" in r]
    if not with_floor:
        return {}
    med = statistics.median
    return {**{f"floor_{proc}_cpu_ms": med(r["floor"].cpu[proc] for r in with_floor) * 1000
               for proc in PROCESSES},
            "floor_x": med(r["floor"].cpu["worker"] / r["skeleton"].cpu["worker"]
                           for r in with_floor),
            "floor_ratio": med(r["floor"].per_minute / r["skeleton"].per_minute
                               for r in with_floor),
            "floor_path": all(r["floor_path"] for r in with_floor)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--series", default="300",
                   help="the Ns to run, comma-separated (e.g. 100,300,1000 for the chart)")
    p.add_argument("--n", type=int, help="a single N instead of the series")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--open", type=int, default=5000, help="0 to leave it out")
    p.add_argument("--day-ms", type=int, default=20)
    p.add_argument("--email-messages", type=int, default=300, help="0 to leave it out")
    p.add_argument("--portal-seconds", type=float, default=10.0,
                   help="each page-view run of the portal's load (bench/portal_load.py); "
                        "0 to leave it out")
    p.add_argument("--storage", choices=["filesystem", "s3"], default="filesystem",
                   help="s3: the workers share a MinIO bucket (results in results-s3.md)")
    p.add_argument("--server", choices=["dev", "cluster"], default="dev",
                   help="cluster: each throughput run also on a real cluster (two hosts on "
                        "PostgreSQL), side by side, in results-cluster.md")
    p.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                   help="a third phase in each pair: the offboardings with activities that "
                        "do no work (bench/floor.py), the lowest worker ratio cuts to the "
                        "activities could reach")
    p.add_argument("--profile", action="store_true",
                   help="sample the worker with py-spy in each N's first repetition; "
                        "summaries in bench/profile-N.md")
    args = p.parse_args()
    rows, pairs = [], []
    series = [args.n] if args.n else [int(x) for x in args.series.split(",") if x]
    for n in series:
        runs = interleaved(n, args)
        rows.append(summarize(n, runs))
        if args.server == "cluster":
            on_cluster_runs = []
            for rep in range(args.reps):
                say(f"== throughput N={n} on the cluster, repetition {rep + 1}/{args.reps}")
                on_cluster_runs.append(loaded(functools.partial(on_cluster, functools.partial(
                    both, n, args.day_ms), args.storage)))
            pairs.append((rows[-1], summarize(n, on_cluster_runs)))
    opened = None
    if args.open:
        say(f"== {args.open} open offboardings")
        opened = on_fresh_stack(functools.partial(open_offboardings.run, args.open))
    extra: list[str] = []
    if args.email_messages:
        say("== email path, plain and over STARTTLS + AUTH")
        extra += email_path.report_lines(
            asyncio.run(email_path.measure_all(args.email_messages, 3)))
    if args.portal_seconds:
        say("== the approvals portal under load")
        portal = portal_report.report_lines(
            asyncio.run(portal_load.measure(args.portal_seconds)))
        extra += [line for line in portal if line.startswith(("- ", "  - "))]
        extra.append("  - the portal's tables and what limits it: "
                     "[results-portal.md](results-portal.md)")
        (ROOT / "bench" / "results-portal.md").write_text(
            f"# The approvals portal under load\n\nFrom `make bench BENCH_ARGS=\""
            f"{' '.join(sys.argv[1:])}\"` ({os.cpu_count()} cores; the 1-minute load "
            "average is given for each run, this benchmark's own load included).\n\n"
            + "\n".join(portal) + "\n")
    text = report(rows, opened, extra, args.day_ms)
    if pairs:
        text = (f"The same N on the dev server and on a real cluster, in one run "
                f"(devtools/cluster.py: host A frontend+history+matching+worker, host B "
                f"frontend+history, {NUM_HISTORY_SHARDS} history shards, PostgreSQL "
                f"15, all on this machine). The machine load is the 1-minute load average "
                f"before and after each run, on {os.cpu_count()} cores: whatever else runs "
                f"shows in throughput and latency far more than in CPU per offboarding."
                f"\n\n{cluster_report(pairs)}\n\n"
                f"On the dev server, as in results.md:\n\n{text}")
    print(text)
    name = "results.md" if args.storage == "filesystem" else f"results-{args.storage}.md"
    if args.server == "cluster":
        name = name.replace("results", "results-cluster")
    (ROOT / "bench" / name).write_text("# Benchmark results\n\n`make bench "
                                               f"BENCH_ARGS=\"{' '.join(sys.argv[1:])}\"`"
                                               f"\n\n{text}\n")
    if rows and args.storage == "filesystem" and args.server == "dev":
        chart(rows, ROOT / "bench" / "results.png")
    say(f"written to bench/{name}")


if __name__ == "__main__":
    main()
