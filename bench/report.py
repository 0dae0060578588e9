"""bench/results.md from the figures bench/run.py gathered: the tables, every target
with whether it was met, the cluster comparison, and the chart."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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
    floor = " (and N on the floor, bench/floor.py)" if any("floor_x" in r for r in rows) else ""
    out = [f"Machine: {os.cpu_count()} cores, {memory_gib():.0f} GiB. One contract day = "
           f"{day_ms} ms. Each N: pairs of N offboardings and N skeletons{floor}, each phase "
           "on a fresh stack, the order alternating; medians of the pairs.", "",
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
        cells = [" / ".join(f"{r[f'{tag}_{proc}_cpu_ms']:.0f}" for proc in PROCS)
                 for tag in ("real", "skel")]
        out.append(f"| {r['n']:.0f} | {cells[0]} | {cells[1]} | **{r['worker_x']:.2f}x** | "
                   f"**{r['server_x']:.2f}x** |")
    for r in rows:
        if "floor_x" in r:
            floor = " / ".join(f"{r[f'floor_{proc}_cpu_ms']:.0f}" for proc in PROCS)
            out.append(f"| {r['n']:.0f}, the floor | {floor} | | {r['floor_x']:.2f}x | |")
    out += ["", "Targets:", ""]
    target = next((r for r in rows if r["n"] == 300), max(rows, key=lambda r: r["n"])
                  if rows else None)
    if target:
        at = f"at N = {target['n']:.0f}, median of {target['reps']:.0f} pairs"
        out += [
            f"- worker CPU per offboarding <= 1.5x the skeleton's: {target['worker_x']:.2f}x "
            f"{at}, {verdict(target['worker_x'] <= 1.5)}",
            *([f"  - the floor, the same offboardings with activities that do no work "
               f"(bench/floor.py): {target['floor_worker_cpu_ms']:.0f} ms an offboarding, "
               f"{target['floor_x']:.2f}x the skeleton's; the activities' own work is the "
               f"other {target['real_worker_cpu_ms'] - target['floor_worker_cpu_ms']:.0f} ms. "
               f"The floor's offboardings per minute: {target['floor_ratio']:.2f}x the "
               f"skeleton's; " + ("its histories had the offboardings' shape" if
                                  target["floor_path"] else "**its histories' shape differed "
                                  "from the offboardings': it took another path**")]
              if "floor_x" in target else []),
            f"- Temporal server CPU per offboarding <= 1.15x the skeleton's: "
            f"{target['server_x']:.2f}x {at}, {verdict(target['server_x'] <= 1.15)}",
            f"- offboardings / skeletons per minute >= 0.85 (at least 3 interleaved pairs): "
            f"{target['ratio']:.2f} {at}, "
            f"{verdict(target['ratio'] >= 0.85 and target['reps'] >= 3)}",
            *cpu_bound(target),
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


PROCS = ("worker", "server", "scim", "bench")


def cpu_bound(r: dict[str, Any]) -> list[str]:
    """What the machine's CPU says of the throughput target. With every core busy, the
    offboardings' rate against the skeleton's follows their CPU per workflow (all
    processes); it ran somewhat above it, by the offset given. Meeting both CPU targets
    exactly is the least they allow, so this is the throughput they would leave."""
    def total(tag: str) -> float:
        return float(sum(r[f"{tag}_{proc}_cpu_ms"] for proc in PROCS))

    skel, real = total("skel"), total("real")
    offset = r["ratio"] - skel / real
    met = 1.5 * r["skel_worker_cpu_ms"] + 1.15 * r["skel_server_cpu_ms"]
    here = skel / (met + r["real_scim_cpu_ms"] + r["real_bench_cpu_ms"])
    away = skel / (met + r["skel_scim_cpu_ms"] + r["skel_bench_cpu_ms"])
    floor = ""
    if "floor_x" in r:
        on_floor = total("floor")
        floor = (f" (on the floor {on_floor:.0f} ms, {skel / on_floor:.2f}, and "
                 f"{r['floor_ratio'] - skel / on_floor:+.2f})")
    return [f"  - the machine's CPU per offboarding, all processes: {real:.0f} ms against the "
            f"skeleton's {skel:.0f}, a ratio of {skel / real:.2f}; the throughput ratio, which "
            f"follows the CPU while every core is busy, was {offset:+.2f} from it{floor}. "
            f"With both CPU targets met (the worker at 1.5x, the server at 1.15x the "
            f"skeleton's) and the rest as measured, the CPU ratio would be {here:.2f}, about "
            f"{here + offset:.2f} in throughput; {away:.2f} ({away + offset:.2f}) were the SCIM "
            f"server and the benchmark's process (driver and SMTP server) to cost no more "
            f"than the skeleton's, as where they run on other machines"]


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
