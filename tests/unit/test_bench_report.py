"""The benchmark report's reading of the machine's CPU (bench/report.py): the throughput
the CPU targets would leave, from one run's figures."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bench.report import PROCS, cpu_bound

ms = st.floats(min_value=1, max_value=1000)


def row(skel: list[float], real: list[float], ratio: float) -> dict[str, float]:
    return {"ratio": ratio, **{f"{tag}_{proc}_cpu_ms": v
                               for tag, values in (("skel", skel), ("real", real))
                               for proc, v in zip(PROCS, values, strict=True)}}


def figures(line: str) -> list[float]:
    """The line's two-decimal figures, not the targets (1.5x, 1.15x)."""
    return [float(x) for x in re.findall(r"[+-]?\d+\.\d\d(?!x)", line)]


@given(skel=st.lists(ms, min_size=4, max_size=4), offset=st.floats(-0.2, 0.2))
def test_a_run_that_meets_both_cpu_targets_exactly_reads_as_its_own_estimate(
        skel: list[float], offset: float) -> None:
    worker, server, scim, bench = skel
    real = [1.5 * worker, 1.15 * server, scim, bench]
    cpu = sum(skel) / sum(real)
    [line] = cpu_bound(row(skel, real, cpu + offset))
    measured, _offset, here, here_seen, away, away_seen = figures(line)
    assert measured == here == away == round(cpu, 2)
    assert here_seen == away_seen == round(cpu + offset, 2)


def test_the_stand_ins_cost_is_what_separates_the_two_estimates() -> None:
    r = row([100, 300, 0, 10], [200, 400, 20, 60], ratio=0.70)
    r.update(floor_x=1.4, floor_ratio=0.80, **{f"floor_{p}_cpu_ms": v for p, v in
                                               zip(PROCS, [140, 350, 0, 20], strict=True)})
    [line] = cpu_bound(r)
    # 410 ms a skeleton, 680 an offboarding, 510 on the floor; both targets met:
    # 150 + 345 = 495, plus 80 for the stand-ins here or 10 as the skeleton's
    assert "680 ms against the skeleton's 410" in line
    assert figures(line) == [round(410 / 680, 2), round(0.70 - 410 / 680, 2),
                             round(410 / 510, 2), round(0.80 - 410 / 510, 2),
                             round(410 / 575, 2), round(410 / 575 + 0.70 - 410 / 680, 2),
                             round(410 / 505, 2), round(410 / 505 + 0.70 - 410 / 680, 2)]
