"""Benchmarks (``make bench``): measured as ratios against baselines run in the same
process, never as timed unit tests."""
