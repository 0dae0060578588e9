"""The benchmark report's reading of the machine's CPU (bench/report.py): what the
throughput ratio could be if the CPU targets were met, from one run's figures."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bench.report import PROCS, cpu_bound

ms = st.floats(min_value=1, max_value=1000)


def row(skel: list[float], real: list[float]) -> dict[str, float]:
    return {f"{tag}_{proc}_cpu_ms": v for tag, values in (("skel", skel), ("real", real))
            for proc, v in zip(PROCS, values, strict=True)}


def figures(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+\.\d\d(?!x)", line)]


@given(skel=st.lists(ms, min_size=4, max_size=4))
def test_a_run_that_meets_both_cpu_targets_exactly_reads_as_its_own_bound(
        skel: list[float]) -> None:
    worker, server, scim, bench = skel
    real = [1.5 * worker, 1.15 * server, scim, bench]
    [line] = cpu_bound(row(skel, real))
    measured, if_met, elsewhere = figures(line)
    assert measured == if_met == elsewhere


def test_the_stand_ins_cost_is_what_separates_the_two_bounds() -> None:
    [line] = cpu_bound(row([100, 300, 0, 10], [200, 400, 20, 60]))
    # 410 ms a skeleton; met: 150 + 345 = 495, plus 80 here or 10 elsewhere
    assert figures(line) == [round(410 / 680, 2), round(410 / 575, 2), round(410 / 505, 2)]
    assert "680 ms against the skeleton's 410" in line
