"""``make bench``: the whole benchmark, on this machine, against real servers.

For each N of the series (default 300), ``--reps`` pairs: N offboardings, and the
same-shape skeleton with the same N (bench/throughput.py), each phase on a fresh stack,
the order alternating from one pair to the next. Then ``--open`` offboardings left waiting
on their notice (bench/open_offboardings.py), the email path, plain and over STARTTLS +
AUTH (bench/email_path.py), and the approvals portal under load (bench/portal_load.py).
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

from bench import email_path, open_offboardings, portal_load, profiling, throughput
from bench.throughput import Stack, percentile, say
from devtools.cluster import NUM_HISTORY_SHARDS, Cluster

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def on_fresh_stack(work: Callable[[Stack], Coroutine[Any, Any, T]],
                   storage: str = "filesystem") -> T:
    """Runs ``work`` on servers of its own; their directory (logs, SQLite file) is removed
    afterwards, or kept and named when the work failed."""
    tmp = Path(tempfile.mkdtemp(prefix="offboarding-bench-"))
    stack = Stack(tmp, storage)
    try:
        stack.start("bench-offboarding")
        result = asyncio.run(work(stack))
    except BaseException:
        stack.close()
        say(f"failed: the servers' logs are kept in {tmp}")
        raise
    stack.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return result


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
    """``args.reps`` pairs of N offboardings and N skeletons, each phase on a fresh stack,
    the order alternating (offboardings first in the first pair: the skeleton copies their
    shape), so a noisy minute or a warming machine falls on both sides."""
    runs: list[dict[str, Any]] = []
    shape = None
    for rep in range(args.reps):
        order = ("real", "skeleton") if rep % 2 == 0 or shape is None else ("skeleton", "real")
        pair: dict[str, Any] = {"order": order}
        before = os.getloadavg()[0]
        for phase in order:
            what = "offboardings" if phase == "real" else "skeleton"
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
            else:
                assert shape is not None
                pair["skeleton"] = on_fresh_stack(functools.partial(
                    throughput.skeleton, n, shape), args.storage)
        pair["load"] = (before, os.getloadavg()[0])
        runs.append(pair)
    return runs


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
           for proc in ("worker", "server", "db", "scim", "bench")},
    }


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


OPEN_BEFORE = {"waiting_rss_mib": 168.0, "after_rss_mib": 504.0}
"""5,000 open offboardings' worker RSS before issue 24 (bench/README.md): what it must not
exceed."""


def report(rows: list[dict[str, Any]], opened: dict[str, Any] | None,
           extra_targets: list[str], day_ms: int) -> str:
    out = [f"Machine: {os.cpu_count()} cores, {memory_gib():.0f} GiB. One contract day = "
           f"{day_ms} ms. Each N: pairs of N offboardings and N skeletons, each phase on a "
           "fresh stack, the order alternating; medians of the pairs.", "",
           "| N | pairs | offboardings/min | skeleton/min | ratio (each pair) | activities/s "
           "(real / skeleton) | latency p50 / p95 / p99 s | approval -> next activity p50 / "
           "p95 / p99 ms |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        each = ", ".join(f"{x:.2f}" for x in r["ratios"])
        out.append(
            f"| {r['n']:.0f} | {r['reps']:.0f} | {r['real_per_min']:.0f} | "
            f"{r['skel_per_min']:.0f} | **{r['ratio']:.2f}** ({each}) | "
            f"{r['real_acts_per_s']:.1f} / {r['skel_acts_per_s']:.1f} | {r['real_p50']:.1f} / "
            f"{r['real_p95']:.1f} / {r['real_p99']:.1f} | {r['human_p50_ms']:.0f} / "
            f"{r['human_p95_ms']:.0f} / {r['human_p99_ms']:.0f} |")
    out += ["", "CPU time per offboarding (ms): worker process / Temporal server / SCIM server / "
            "the benchmark (driver and SMTP server); the ratios are medians of the pairs' "
            "ratios:", "",
            "| N | offboarding | skeleton | worker CPU, offboarding / skeleton | server CPU, "
            "offboarding / skeleton |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [" / ".join(f"{r[f'{tag}_{proc}_cpu_ms']:.0f}"
                            for proc in ("worker", "server", "scim", "bench"))
                 for tag in ("real", "skel")]
        out.append(f"| {r['n']:.0f} | {cells[0]} | {cells[1]} | **{r['worker_x']:.2f}x** | "
                   f"**{r['server_x']:.2f}x** |")
    out += ["", "Targets:", ""]
    target = next((r for r in rows if r["n"] == 300), max(rows, key=lambda r: r["n"])
                  if rows else None)
    if target:
        at = f"at N = {target['n']:.0f}, median of {target['reps']:.0f} pairs"
        out += [
            f"- worker CPU per offboarding <= 1.5x the skeleton's: {target['worker_x']:.2f}x "
            f"{at}, {verdict(target['worker_x'] <= 1.5)}",
            f"- Temporal server CPU per offboarding <= 1.15x the skeleton's: "
            f"{target['server_x']:.2f}x {at}, {verdict(target['server_x'] <= 1.15)}",
            f"- offboardings / skeletons per minute >= 0.85 (at least 3 interleaved pairs): "
            f"{target['ratio']:.2f} {at}, "
            f"{verdict(target['ratio'] >= 0.85 and target['reps'] >= 3)}",
            f"- approval -> next activity p99 <= 200 ms: {target['human_p99_ms']:.0f} ms, "
            f"{verdict(target['human_p99_ms'] <= 200)}"]
        largest = max(rows, key=lambda r: r["n"])
        if largest["n"] >= 1000:
            out.append(f"- 1,000 offboardings in <= 10 minutes: "
                       f"{largest['real_seconds'] / 60:.1f} min, "
                       f"{verdict(largest['real_seconds'] <= 600)}")
    if opened:
        ok = all(opened[k] <= v for k, v in OPEN_BEFORE.items())
        out.append(f"- worker RSS with {opened['m']} open offboardings no more than before "
                   f"issue 24 ({OPEN_BEFORE['waiting_rss_mib']:.0f} MiB while waiting, "
                   f"{OPEN_BEFORE['after_rss_mib']:.0f} after the notices): "
                   f"{opened['waiting_rss_mib']:.0f} and {opened['after_rss_mib']:.0f} MiB "
                   f"(idle {opened['idle_rss_mib']:.0f}), {verdict(ok)}")
        out.append(f"  - started in {opened['start_seconds']:.0f} s; every notice sent "
                   f"{opened['all_sent_after_last_due_s']:.0f} s after the last one was due "
                   f"({opened['all_sent_after_first_due_s']:.0f} s after the first)")
    return "\n".join(out + extra_targets)


def cluster_report(pairs: list[tuple[dict[str, float], dict[str, float]]]) -> str:
    """The same N on the dev server and on the cluster, one run after the other."""
    out = ["| N | reps | server | offboardings/min | skeleton/min | offboarding / skeleton | "
           "latency p50 / p99 s | approval -> next activity p50 / p99 ms | CPU ms per "
           "offboarding: worker / Temporal server / PostgreSQL / all three | machine load "
           "before / after |",
           "|---|---|---|---|---|---|---|---|---|---|"]

    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    def cpu(r: dict[str, float]) -> list[float]:
        parts = [r[f"real_{proc}_cpu_ms"] for proc in ("worker", "server", "db")]
        return [*parts, sum(parts)]

    for dev, cluster in pairs:
        for name, r in (("dev server (SQLite)", dev), ("cluster (2 hosts, PostgreSQL)", cluster)):
            out.append(
                f"| {r['n']:.0f} | {r['reps']:.0f} | {name} | {r['real_per_min']:.0f} | "
                f"{r['skel_per_min']:.0f} | {r['ratio']:.2f} | {r['real_p50']:.1f} / "
                f"{r['real_p99']:.1f} | {r['human_p50_ms']:.0f} / {r['human_p99_ms']:.0f} | "
                + " / ".join(f"{x:.0f}" for x in cpu(r))
                + f" | {r['load_before']:.1f} / {r['load_after']:.1f} |")
        ratio = [div(c, d) for c, d in zip(cpu(cluster), cpu(dev), strict=True)]
        out.append(
            f"| {dev['n']:.0f} | | **cluster / dev** | "
            f"**{div(cluster['real_per_min'], dev['real_per_min']):.2f}** | "
            f"{div(cluster['skel_per_min'], dev['skel_per_min']):.2f} | | "
            f"{div(cluster['real_p50'], dev['real_p50']):.2f} / "
            f"{div(cluster['real_p99'], dev['real_p99']):.2f} | "
            f"{div(cluster['human_p50_ms'], dev['human_p50_ms']):.2f} / "
            f"{div(cluster['human_p99_ms'], dev['human_p99_ms']):.2f} | "
            + " / ".join("-" if x != x else f"**{x:.2f}**" if i == 3 else f"{x:.2f}"
                         for i, x in enumerate(ratio)) + " | |")
    skel = [" / ".join(f"{r[f'skel_{proc}_cpu_ms']:.0f}" for proc in ("worker", "server", "db"))
            for pair in pairs for r in pair]
    out += ["", "The skeleton's CPU ms per workflow, worker / server / PostgreSQL, dev then "
            "cluster: " + "; ".join(f"N = {pairs[i // 2][0]['n']:.0f}: {a} and {b}"
                                    for i, (a, b) in enumerate(zip(skel[::2], skel[1::2],
                                                                   strict=True)))]
    return "\n".join(out)


def chart(rows: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(ns, [r["real_per_min"] for r in rows], "o-", label="offboarding")
    left.plot(ns, [r["skel_per_min"] for r in rows], "s--", label="skeleton")
    left.set(xlabel="N", ylabel="completed per minute", title="Throughput")
    left.legend()
    right.plot(ns, [r["real_p50"] for r in rows], "o-", label="offboarding p50")
    right.plot(ns, [r["real_p99"] for r in rows], "o:", label="offboarding p99")
    right.plot(ns, [r["skel_p50"] for r in rows], "s--", label="skeleton p50")
    right.set(xlabel="N", ylabel="seconds", title="Completion latency")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--series", default="300",
                   help="the Ns to run, comma-separated (e.g. 100,300,1000 for the chart)")
    p.add_argument("--n", type=int, help="a single N instead of the series")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--open", type=int, default=5000, help="0 to leave it out")
    p.add_argument("--day-ms", type=int, default=20)
    p.add_argument("--email-messages", type=int, default=300, help="0 to leave it out")
    p.add_argument("--portal-seconds", type=float, default=15.0,
                   help="each page-view run of the portal's load (bench/portal_load.py); "
                        "0 to leave it out")
    p.add_argument("--storage", choices=["filesystem", "s3"], default="filesystem",
                   help="s3: the workers share a MinIO bucket (results in results-s3.md)")
    p.add_argument("--server", choices=["dev", "cluster"], default="dev",
                   help="cluster: each throughput run also on a real cluster (two hosts on "
                        "PostgreSQL), side by side, in results-cluster.md")
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
        portal = portal_load.report_lines(asyncio.run(portal_load.measure(args.portal_seconds)))
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
