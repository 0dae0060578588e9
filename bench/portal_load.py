"""The approvals portal under load (issue 24): page views and decisions from C concurrent
approvers, with the portal as ``make run`` starts it (``python -m offboarding.portal.main``,
one process) and with several processes (``OFFBOARDING_PORTAL_WORKERS``).

A stack of its own on free ports (bench/throughput.py's: the dev server on a SQLite file,
aiosmtpd, the SCIM server), the worker process, payloads encrypted and links signed as
under ``make run``. It starts terminations, which ask finance to approve a settlement and
the client's data steward to verify an export at once, and takes the real signed links
from the captured mail. Then, in each of ``--rounds`` rounds (3), for each number of
portal processes (1, 2, 4, in a turning order, so that whatever else the machine is doing
falls on each alike):

- **page views**: for each C, C approvers in a closed loop for a fixed time, each with an
  httpx client of its own, each view a GET of one of the links (finance's and the
  steward's, over all the offboardings, in turn) on a new connection, as people opening
  their mail do; pages/s, p50/p95/p99, and every answer but a 200 counted as an error;
- **decisions**: a burst of K approvals of K other offboardings' settlements, all at
  once, each from its own approver: the POST of the page's form up to its 303.

and, once a round, the status query alone (what every page asks Temporal) from this
process, 1 and 10 at a time, to show how much of a page it is. Each row reports its
rounds together (pages/s over their windows, percentiles over all their views).

CPU seconds of the portal's processes, the worker, the Temporal server and this process
(the load generator, on the same cores) are read from /proc around each run, and the
whole machine's, so that the CPU other work took meanwhile is shown beside the figures.

``measure`` and ``report_lines`` are what ``bench/run.py`` uses; run alone,
``.venv/bin/python -m bench.portal_load --write`` writes ``bench/results-portal.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.profiling import TICKS, cpu_seconds, tree_cpu_seconds
from bench.stack import Stack, say
from bench.throughput import percentile
from devtools.approvers import LINK
from devtools.examples import example_client
from devtools.procs import free_port, stop
from offboarding.client import OffboardingClient
from offboarding.models.client_file import ClientFile
from offboarding.security import links
from offboarding.security.codec import load_keys, new_key_file
from offboarding.temporal import connect, register_search_attributes

ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE = "bench-offboarding"
TARGET_PAGES, TARGET_P99_MS, TARGET_APPROVERS = 150, 150, 10
FINANCE, STEWARD = "final settlement v1", "ready for transfer"
READY = "Application startup complete"


PROCESSES = ("portal", "worker", "server", "bench")


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, every process, /proc/stat)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / TICKS  # less idle and iowait


class Counters:
    """CPU seconds so far, by process: the portal's (its processes, living and reaped),
    the worker's, the Temporal server's, this one's (the load generator), and the
    machine's in all."""

    def __init__(self, stack: Stack, worker: int) -> None:
        assert stack.server is not None and stack.server.proc is not None
        self.server, self.worker = stack.server.proc.pid, worker
        self.portal: int | None = None

    def read(self) -> dict[str, float]:
        return {"portal": tree_cpu_seconds(self.portal) if self.portal else 0.0,
                "worker": cpu_seconds(self.worker), "server": cpu_seconds(self.server),
                "bench": time.process_time(), "machine": machine_busy()}

    async def quiet(self, timeout: float = 60.0) -> None:
        """Until the worker and the server have been nearly idle for a second (what an
        earlier run set going has finished), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = cpu_seconds(self.worker) + cpu_seconds(self.server)
            await asyncio.sleep(1.0)
            if cpu_seconds(self.worker) + cpu_seconds(self.server) - before < 0.1:
                return


STALL = 5.0
"""Seconds: a view this slow is a stall, not queueing (see ``limits``)."""


@dataclass
class Sample:
    """One run: its latencies, errors, the answers within its window and the CPU spent
    in it, by process."""

    latencies: list[float]
    errors: Counter[str]
    counted: int
    seconds: float
    cpu: dict[str, float]
    served_by: list[int] = field(default_factory=list)
    """Views each portal process served, most first."""
    failures: list[str] = field(default_factory=list)
    """What the portal logged going wrong."""


def combine(samples: list[Sample]) -> dict[str, Any]:
    """The runs of one setting (the rounds) as one: rates over their windows added up,
    percentiles over their latencies pooled, CPU per answer, and the cores the rest of
    the machine used meanwhile (other sessions, the kernel's work)."""
    latencies = [x for s in samples for x in s.latencies]
    errors: Counter[str] = sum((s.errors for s in samples), Counter())
    counted, seconds = sum(s.counted for s in samples), sum(s.seconds for s in samples)
    cpu = {k: sum(s.cpu[k] for s in samples) for k in samples[0].cpu}
    shares = [[n / sum(s.served_by) for n in s.served_by] for s in samples
              if len(s.served_by) > 1]
    return {"ok": len(latencies), "errors": errors.total(), "error_kinds": dict(errors),
            "seconds": seconds, "per_s": counted / seconds,
            "rounds_per_s": [s.counted / s.seconds for s in samples],
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p95_ms": percentile(latencies, 0.95) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies, default=float("nan")) * 1000,
            "stalls": sum(1 for x in latencies if x > STALL),
            "cpu_ms": {k: cpu[k] * 1000 / counted if counted else float("nan")
                       for k in PROCESSES},
            "others_cores": max(0.0, cpu["machine"] - sum(cpu[k] for k in PROCESSES))
            / seconds,
            "shares": [sum(col) / len(col) for col in zip(*shares, strict=True)]
            if shares else [],
            "portal_errors": list(dict.fromkeys(x for s in samples for x in s.failures))[:3]}


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


async def closed_loop(concurrency: int, seconds: float, counters: Counters,
                      request: Callable[[Any, int], Awaitable[str | None]],
                      client: Callable[[], AbstractAsyncContextManager[Any]]) -> Sample:
    """``concurrency`` approvers, each with its own client, each sending its next request
    as soon as its last one is answered, for ``seconds``; ``request(http, i)`` sends the
    i-th and returns None, or what went wrong. The rate (and CPU per request) counts the
    answers within the window; the latencies are every request's started in it, those
    answered after it included (a stalled one counts in the percentiles, not the rate)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    within = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def approver(first: int) -> None:
        nonlocal within
        async with client() as http:
            i = first
            while loop.time() < deadline:
                sent = loop.time()
                error = await request(http, i)
                if error is None:
                    latencies.append(loop.time() - sent)
                    within += loop.time() <= deadline
                else:
                    errors[error] += 1
                i += concurrency

    async def at_deadline() -> tuple[dict[str, float], int]:
        await asyncio.sleep(deadline - loop.time())
        return counters.read(), within

    before = counters.read()
    mark = asyncio.create_task(at_deadline())
    await asyncio.gather(*(approver(i) for i in range(concurrency)))
    after, counted = await mark
    return Sample(latencies, errors, counted, seconds, _spent(before, after))


def _fresh_connections() -> httpx.AsyncClient:
    """An approver's browser: no connection kept between views (a view is a person
    opening a link from their mail)."""
    return httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def _kept_connection() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30)


async def page_views(links_: list[str], concurrency: int, seconds: float, counters: Counters,
                     keepalive: bool) -> Sample:
    async def view(http: httpx.AsyncClient, i: int) -> str | None:
        try:
            status = (await http.get(links_[i % len(links_)])).status_code
        except httpx.HTTPError as err:
            return type(err).__name__
        return None if status == 200 else f"HTTP {status}"

    return await closed_loop(concurrency, seconds, counters, view,
                             _kept_connection if keepalive else _fresh_connections)


async def decision_burst(links_: list[str], counters: Counters) -> Sample:
    """Every link's approval at once, each from its own approver: the POST of the page's
    form, answered by a 303 to the page once the workflow has accepted it."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def decide(link: str) -> None:
        base, token = link.rsplit("/", 1)
        async with _fresh_connections() as http:
            start = time.perf_counter()
            try:
                answer = await http.post(base + "/decide",
                                         data={"token": token, "decision": "approve"})
            except httpx.HTTPError as err:
                errors[type(err).__name__] += 1
                return
            if answer.status_code == 303:
                latencies.append(time.perf_counter() - start)
            else:
                errors[f"HTTP {answer.status_code}"] += 1

    before = counters.read()
    start = time.perf_counter()
    await asyncio.gather(*(decide(link) for link in links_))
    elapsed = time.perf_counter() - start
    return Sample(latencies, errors, len(latencies), elapsed,
                  _spent(before, counters.read()))


async def query_alone(cli: OffboardingClient, wids: list[str], concurrency: int,
                      seconds: float, counters: Counters) -> Sample:
    """What every page asks Temporal, from this process: the status query."""
    async def query(_: None, i: int) -> str | None:
        await cli.status(wids[i % len(wids)])
        return None

    return await closed_loop(concurrency, seconds, counters, query, nullcontext)


def _clients(n: int, stack: Stack) -> list[ClientFile]:
    end = date.today() + timedelta(days=40)
    return [example_client("termination", tag=f"portal-{i:04d}",
                           data_root=stack.dir / "client-data", end_date=end,
                           scim=stack.scim) for i in range(n)]


def _links(stack: Stack) -> dict[str, dict[str, str]]:
    """Each offboarding's links, by whose they are (finance's, the steward's)."""
    found: dict[str, dict[str, str]] = {}
    for captured in list(stack.capture.messages):
        wid = str(captured.message["X-Offboarding-Workflow"])
        for who, subject in (("finance", FINANCE), ("steward", STEWARD)):
            if subject in captured.subject:
                link = LINK.findall(captured.text())
                if link:
                    found.setdefault(wid, {})[who] = link[0]
    return found


async def _offboardings(cli: OffboardingClient, stack: Stack, n: int) -> dict[str, dict[str, str]]:
    """N terminations started and waiting on both approvers; their links."""
    files = _clients(n, stack)
    sem = asyncio.Semaphore(16)

    async def start(cf: ClientFile) -> str:
        async with sem:
            return await cli.start(cf)

    wids = await asyncio.gather(*(start(cf) for cf in files))
    deadline = time.monotonic() + 120 + 3 * n
    while True:
        found = _links(stack)
        ready = [w for w in wids if len(found.get(w, {})) == 2]
        if len(ready) == n:
            return {w: found[w] for w in wids}
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {n} offboardings sent both links")
        say(f"  links: {len(ready)}/{n} offboardings")
        await asyncio.sleep(3)


def _start_portal(stack: Stack, workers: int) -> Any:
    base = stack.env
    stack.env = {**base, "OFFBOARDING_PORTAL_WORKERS": str(workers)}
    try:
        proc = stack.start_process([sys.executable, "-m", "offboarding.portal.main"],
                                   f"portal-{workers}.log", READY)
    finally:
        stack.env = base
    log = stack.dir / f"portal-{workers}.log"
    deadline = time.monotonic() + 60
    while log.read_text().count(READY) < workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the portal's {workers} processes did not start:\n"
                               f"{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


SERVED = re.compile(r"\[(\d+)\] \S+ - \"GET /o/")


def _served_by(log: Path, offset: int) -> list[int]:
    """Views each portal process served since ``offset`` in its log, most first (several
    processes' log lines name their pid)."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return sorted(Counter(SERVED.findall(text)).values(), reverse=True)


def _failures(log: Path, offset: int) -> list[str]:
    """What the portal logged going wrong since ``offset``: the exception each traceback
    ends with (a 500 is logged with one), distinct, the first three. Several processes'
    lines may interleave: an access line inside a traceback is skipped."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    found, inside = [], False
    for line in lines:
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line[0].isspace() and not line.startswith(
                ("INFO", "WARNING", "ERROR", "During handling", "The above exception")):
            found.append(line.strip())
            inside = False
    return list(dict.fromkeys(found))[:3]


async def _check_pages(links_: list[str]) -> None:
    """Every link opens its page, with a decision to take (what the load then asks)."""
    async with _kept_connection() as http:
        for link in links_:
            page = await http.get(link)
            if page.status_code != 200 or 'name="token"' not in page.text:
                raise RuntimeError(f"{link}: HTTP {page.status_code}, no decision offered")


async def run(stack: Stack, *, seconds: float, rounds: int, workers: tuple[int, ...],
              approvers: tuple[int, ...], offboardings: int, decisions: int,
              keepalive: bool) -> dict[str, Any]:
    """Everything, on a started stack (``stack.start(TASK_QUEUE)``): ``rounds`` times
    each number of portal processes (in a turning order, so that what else the machine
    does falls on each alike), each approvers' count for ``seconds``, and a burst of
    ``decisions``; then the query alone."""
    port = free_port()
    links.new_key_file(stack.dir / "link-keys.json")
    new_key_file(stack.dir / "codec-keys.json")
    stack.env.update({"OFFBOARDING_LINK_KEY_FILE": str(stack.dir / "link-keys.json"),
                      "OFFBOARDING_CODEC_KEY_FILE": str(stack.dir / "codec-keys.json"),
                      "OFFBOARDING_PORTAL_URL": f"http://127.0.0.1:{port}",
                      "OFFBOARDING_PORTAL_ADDRESS": f"127.0.0.1:{port}"})
    client = await connect(stack.address, load_keys(stack.dir / "codec-keys.json", None, None))
    await register_search_attributes(client)
    worker = stack.start_process([sys.executable, "worker.py"], "worker.log", "worker polling")
    counters = Counters(stack, worker.pid)
    cli = OffboardingClient(client, TASK_QUEUE)
    total = offboardings + decisions * len(workers) * rounds
    say(f"portal: starting {total} terminations ({offboardings} for page views, "
        f"{decisions} to decide per portal setting and round)")
    started = await _offboardings(cli, stack, total)
    wids = list(started)
    viewed, to_decide = wids[:offboardings], iter(wids[offboardings:])
    pages = [started[w][who] for w in viewed for who in ("finance", "steward")]
    views: dict[tuple[int, int], list[Sample]] = {}
    bursts: dict[int, list[Sample]] = {}
    queries: dict[int, list[Sample]] = {}
    for round_ in range(rounds):
        turn = round_ % len(workers)
        for count in workers[turn:] + workers[:turn]:
            proc = _start_portal(stack, count)
            log = stack.dir / f"portal-{count}.log"
            counters.portal = proc.pid
            try:
                await _check_pages(pages)  # and every process has its templates and client
                for c in approvers:
                    await counters.quiet()
                    offset = log.stat().st_size
                    sample = await page_views(pages, c, seconds, counters, keepalive)
                    sample.served_by = _served_by(log, offset)
                    if sample.errors:
                        sample.failures = _failures(log, offset)
                    views.setdefault((count, c), []).append(sample)
                    say(f"  round {round_ + 1}/{rounds}, {count} portal process(es), {c} "
                        f"approvers: {sample.counted / seconds:.0f} pages/s, "
                        f"{sample.errors.total()} errors")
                await counters.quiet()
                mine = [started[next(to_decide)]["finance"] for _ in range(decisions)]
                bursts.setdefault(count, []).append(await decision_burst(mine, counters))
            finally:
                stop(proc)
                stack.procs.remove(proc)
                counters.portal = None
        for c in (1, 10):
            await counters.quiet()
            queries.setdefault(c, []).append(
                await query_alone(cli, viewed, c, seconds, counters))
        say(f"  round {round_ + 1}/{rounds}: the status query alone, 1 and 10 at a time")
    return {"seconds": seconds, "rounds": rounds, "offboardings": offboardings,
            "links": len(pages), "keepalive": keepalive, "cores": os.cpu_count(),
            "pages": [{"workers": w, "approvers": c, **combine(views[w, c])}
                      for w in workers for c in approvers],
            "decisions": [{"workers": w, "k": decisions, **combine(bursts[w])}
                          for w in workers],
            "query": [{"concurrency": c, **combine(queries[c])} for c in (1, 10)]}


async def measure(seconds: float = 10.0, rounds: int = 3,
                  workers: tuple[int, ...] = (1, 2, 4),
                  approvers: tuple[int, ...] = (1, 10, 50), offboardings: int = 24,
                  decisions: int = 10, keepalive: bool = False) -> dict[str, Any]:
    """On a stack of its own, removed afterwards (kept and named when the run fails)."""
    tmp = Path(tempfile.mkdtemp(prefix="offboarding-bench-portal-"))
    stack = Stack(tmp)
    try:
        stack.start(TASK_QUEUE)
        result = await run(stack, seconds=seconds, rounds=rounds, workers=workers,
                           approvers=approvers, offboardings=offboardings,
                           decisions=decisions, keepalive=keepalive)
    except BaseException:
        stack.close()
        say(f"failed: the servers' logs are kept in {tmp}")
        raise
    stack.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _target(result: dict[str, Any]) -> dict[str, Any] | None:
    """The run the target is about: make run's portal (one process), 10 approvers."""
    return next((r for r in result["pages"]
                 if r["workers"] == 1 and r["approvers"] == TARGET_APPROVERS), None)


def report_lines(result: dict[str, Any]) -> list[str]:
    """Markdown: the target line, the tables, and what limits the portal."""
    out = []
    target = _target(result)
    if target is not None:
        errors = f", {target['errors']} errors" if target["errors"] else ""
        ok = (target["per_s"] >= TARGET_PAGES and target["p99_ms"] <= TARGET_P99_MS
              and target["errors"] == 0)
        out.append(f"- portal: >= {TARGET_PAGES} page views/s with p99 <= {TARGET_P99_MS} ms "
                   f"at {TARGET_APPROVERS} concurrent approvers: {target['per_s']:.0f} "
                   f"pages/s, p99 {target['p99_ms']:.0f} ms{errors}, {verdict(ok)}")
        best = max((r for r in result["pages"] if r["approvers"] == TARGET_APPROVERS),
                   key=lambda r: r["per_s"])
        if best is not target:
            out.append(f"  - with {best['workers']} portal processes: {best['per_s']:.0f} "
                       f"pages/s, p99 {best['p99_ms']:.0f} ms")
    connection = ("one connection kept by each approver" if result["keepalive"] else
                  "a new connection for each view")
    out += ["", f"Page views ({result['links']} links: finance's and the data steward's of "
            f"{result['offboardings']} offboardings; {result['rounds']} rounds of "
            f"{result['seconds']:g} s for each row, its pages/s the rounds' together (each "
            f"round's in parentheses), its percentiles over all their views; {connection}; a "
            f"view slower than {STALL:g} s is a stall; the last column is the CPU the rest "
            f"of the machine used meanwhile, in cores: other sessions' work, the kernel's):",
            "",
            "| portal processes | approvers | pages/s (rounds) | p50 ms | p95 ms | p99 ms | "
            "max ms | stalls | errors | CPU ms per page: portal / worker / server / load "
            "generator | views per process % | rest of the machine |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["pages"]:
        cpu = r["cpu_ms"]
        rounds = ", ".join(f"{x:.0f}" for x in r["rounds_per_s"])
        out.append(f"| {r['workers']} | {r['approvers']} | {r['per_s']:.0f} ({rounds}) | "
                   f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | "
                   f"{r['max_ms']:,.0f} | {r['stalls']} | {r['errors']} | "
                   f"{cpu['portal']:.1f} / {cpu['worker']:.1f} / {cpu['server']:.1f} / "
                   f"{cpu['bench']:.1f} | {_shares(r)} | {max(0.0, r['others_cores']):.2f} |")
    failed = [f"{r['workers']} process(es), {r['approvers']} approvers: "
              + ", ".join(f"{n} {kind}" for kind, n in r["error_kinds"].items())
              + "".join(f" (the portal logged `{line[:300]}`)"
                        for line in r.get("portal_errors", []))
              for r in result["pages"] if r["errors"]]
    if failed:
        out += ["", "Errors: " + "; ".join(failed) + "."]
    out += ["", "Decisions (the form's POST up to its 303, K offboardings' approvals at once, "
            "once a round):",
            "", "| portal processes | K | decisions/s | p50 ms | p99 ms | max ms | errors | "
            "CPU ms per decision: portal / worker / server |",
            "|---|---|---|---|---|---|---|---|"]
    for r in result["decisions"]:
        cpu = r["cpu_ms"]
        out.append(f"| {r['workers']} | {r['k']} | {r['per_s']:.1f} | {r['p50_ms']:.0f} | "
                   f"{r['p99_ms']:.0f} | {r['max_ms']:,.0f} | {r['errors']} | "
                   f"{cpu['portal']:.1f} / {cpu['worker']:.1f} / {cpu['server']:.1f} |")
    out += ["", "The status query alone (what each page asks Temporal), from the benchmark's "
            "process, once a round:", "",
            "| at a time | queries/s | p50 ms | p95 ms | p99 ms | max ms | stalls | "
            "CPU ms per query: worker / server / this process |",
            "|---|---|---|---|---|---|---|---|"]
    for r in result["query"]:
        cpu = r["cpu_ms"]
        out.append(f"| {r['concurrency']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | "
                   f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:,.0f} | "
                   f"{r['stalls']} | {cpu['worker']:.1f} / {cpu['server']:.1f} / "
                   f"{cpu['bench']:.1f} |")
    return [*out, "", *limits(result)]


def _shares(r: dict[str, Any]) -> str:
    return " / ".join(f"{100 * x:.0f}" for x in r["shares"]) or "-"


def _processes(result: dict[str, Any]) -> list[str]:
    """Several portal processes against one, in words."""
    runs = {(r["workers"], r["approvers"]): r for r in result["pages"]}
    counts = sorted({w for w, _ in runs})
    if len(counts) < 2 or counts[0] != 1:
        return []
    more = counts[1:]
    said = []
    helped = []
    for c in sorted({c for _, c in runs}):
        if c == 1 or (1, c) not in runs:
            continue
        helped += [w for w in more if (w, c) in runs
                   and runs[w, c]["per_s"] > 1.1 * runs[1, c]["per_s"]]
        them = [runs[w, c] for w in more if (w, c) in runs]
        counts_ = " and ".join(str(r["workers"]) for r in them)
        rates = " and ".join(f"{r['per_s']:.0f}" for r in them)
        p95s = " and ".join(f"{r['p95_ms']:,.0f}" for r in them)
        said.append(f"at {c} approvers {counts_} processes served {rates} pages/s (p95 "
                    f"{p95s} ms) against {runs[1, c]['per_s']:.0f} (p95 "
                    f"{runs[1, c]['p95_ms']:,.0f} ms) with one")
    top = max(c for _, c in runs)
    cost = [(w, sum(runs[w, top]["cpu_ms"][k] for k in ("portal", "worker", "server")))
            for w in counts if (w, top) in runs]
    more_cpu = cost[-1][1] > 1.1 * cost[0][1]
    spent = ", ".join(f"{c:.1f} ms with {w}" for w, c in cost)
    return [
        f"Several portal processes: {'; '.join(said)}. "
        + (f"A page cost more CPU the more processes there were (portal, worker and "
           f"server, at {top} approvers: {spent}): each process keeps its own connection "
           f"to Temporal, and all" if more_cpu else
           f"A page cost about the same CPU (portal, worker and server, at {top} "
           f"approvers: {spent}), and all")
        + f" of them share the {result['cores']} cores with the server and the worker. "
        + ("On this machine more processes bought more than a tenth more pages/s only "
           "in some settings (above); what they surely buy is a portal that survives one "
           "process's death." if helped else
           "On this machine more processes buy no throughput (none served a tenth more "
           "pages/s than one); what they buy is a portal that survives one process's "
           "death."),
    ]


def limits(result: dict[str, Any]) -> list[str]:
    """What limits the portal, in words, from the figures: where a page's CPU goes, how
    much of it is the status query, and the stalls."""
    target = _target(result)
    one = next((r for r in result["pages"] if r["workers"] == 1 and r["approvers"] == 1),
               None)
    query = next((r for r in result["query"] if r["concurrency"] == 1), None)
    if target is None or one is None or query is None:
        return []
    cpu, rate, cores = target["cpu_ms"], target["per_s"], result["cores"]
    temporal = cpu["worker"] + cpu["server"]
    own = cpu["portal"] + cpu["worker"] + cpu["server"]
    pages = sum(r["ok"] for r in result["pages"])
    stalls = sum(r["stalls"] for r in result["pages"])
    longest = max(r["max_ms"] for r in result["pages"])
    query_stalls = sum(r["stalls"] for r in result["query"])
    busy = (own + cpu["bench"]) * rate / 1000
    others = target["others_cores"]
    if busy + others >= 0.75 * cores:
        verdict_cpu = ("the machine's CPU is what runs out, shared by the four, not one "
                       "process")
    else:
        verdict_cpu = ("no one process is saturated, and the machine had CPU to spare: "
                       "what was left is waiting in the query's path")
    decided = [r for r in result["decisions"] if r["workers"] == 1]
    processes = _processes(result)
    if stalls or query_stalls:
        seen = (f"Stalls: {stalls} of {pages:,} page views took over {STALL:g} s (the "
                f"longest {longest:,.0f} ms), and {query_stalls} of the queries timed alone. "
                f"They are")
    else:
        seen = (f"Stalls: none in this run ({pages:,} page views, the longest "
                f"{longest:,.0f} ms). When they occur they are")
    return [
        f"What limits it. At {TARGET_APPROVERS} approvers and one portal process, a page "
        f"view cost {own:.1f} ms of CPU: {cpu['portal']:.1f} in the portal, "
        f"{cpu['worker']:.1f} in the worker (which answers the status query from its cache "
        f"of the workflow) and {cpu['server']:.1f} in the Temporal server (which routes "
        f"the query to the worker and back); the load generator, on the same cores, added "
        f"{cpu['bench']:.1f}: Temporal's side is {temporal / own:.0%} of a page's CPU. "
        f"At {rate:.0f} pages/s the portal's process used "
        f"{cpu['portal'] * rate / 1000:.0%} of a core and the four together {busy:.2f} of "
        f"the {cores} cores, the rest of the machine {others:.2f}: {verdict_cpu}. CPU "
        f"alone would allow about "
        f"{cores * 1000 / (own + cpu['bench']):.0f} pages/s on these cores with the "
        f"generator on them, {cores * 1000 / own:.0f} without it.",
        *(["", *processes] if processes else []),
        "",
        f"Each page asks Temporal one query. Timed alone, one at a time, the status query "
        f"took {query['p50_ms']:.1f} ms at p50 ({query['per_s']:.0f} queries/s) against "
        f"{one['p50_ms']:.1f} ms for a whole page at one approver: the query is about "
        f"{query['p50_ms'] / one['p50_ms']:.0%} of a page's time; the rest is the portal's "
        f"own (the link's signature, the status's decoding and model, the template, HTTP "
        f"on a new connection).",
        "",
        f"{seen} the status query waiting out the worker's sticky-queue schedule-to-start "
        f"timeout (10 s, the Python SDK's default): the query was dispatched to the "
        f"worker's own (sticky) queue, its answer came too late (the worker logs \"Query "
        f"not found when attempting to respond to it\"), and the server dispatched it "
        f"again through the task queue once the timeout had passed. Measured once by hand: "
        f"with the worker's timeout at 3 s the stalls took 3 s; about 1 query in 1,000 "
        f"from 5 to 20 at a time, whether or not two queries ask the same offboarding at "
        f"once, and rarer one at a time (none in 5,154; here "
        + ", ".join(f"{r['stalls']} of {r['ok']:,} {r['concurrency']} at a time"
                    for r in result["query"])
        + "). A stalled view holds its approver for 10 s: in a closed loop that is lost "
        "throughput as well as the tail.",
        "",
        f"What a deployment should run for a month-end burst. 1,000 offboardings reaching "
        f"their approvers on one day bring 2,000 approvers (finance and the data steward); "
        f"if each opens the page three times (to read, to decide, the page after the "
        f"decision) and all of them within one hour, that is 6,000 page views and 2,000 "
        f"decisions: 1.7 pages/s and 0.6 decisions/s, against {rate:.0f} pages/s and "
        + (f"{decided[0]['per_s']:.0f} decisions/s " if decided else "")
        + f"from one portal process here. So: `OFFBOARDING_PORTAL_WORKERS=2` for "
        f"availability, not throughput (a process that dies is replaced while the other "
        f"serves); more processes only with more cores of their own (a process is one "
        f"event loop: at {cpu['portal']:.1f} ms of CPU a page, about "
        f"{1000 / cpu['portal']:.0f} pages/s with a core to itself), not on the cores the "
        f"Temporal server and the worker use, which spend {temporal / cpu['portal']:.1f}x "
        f"the portal's CPU per page. Each view is a query the worker holding that "
        f"offboarding answers, so a burst of views lands on the workers and the server as "
        f"much as on the portal: size them for the offboardings, and keep the portal's "
        f"processes few.",
    ]


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="each page-view run")
    p.add_argument("--rounds", type=int, default=3,
                   help="runs of every setting, in a turning order of portal processes")
    p.add_argument("--workers", type=_ints, default=(1, 2, 4),
                   help="portal processes, comma-separated (1: as make run starts it)")
    p.add_argument("--approvers", type=_ints, default=(1, 10, 50),
                   help="concurrent approvers, comma-separated")
    p.add_argument("--offboardings", type=int, default=24,
                   help="offboardings whose two links the page views spread over")
    p.add_argument("--decisions", type=int, default=10,
                   help="K: approvals sent at once, per number of portal processes and round")
    p.add_argument("--keepalive", action="store_true",
                   help="each approver keeps its connection (default: a new one per view)")
    p.add_argument("--write", action="store_true", help="write bench/results-portal.md")
    p.add_argument("--json", type=Path, help="also save the figures to this file")
    p.add_argument("--render", type=Path,
                   help="measure nothing: report the figures --json saved in this file")
    args = p.parse_args()
    if args.render:
        result = json.loads(args.render.read_text())
    else:
        result = asyncio.run(measure(args.seconds, args.rounds, args.workers, args.approvers,
                                     args.offboardings, args.decisions, args.keepalive))
        result["argv"] = sys.argv[1:]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    text = "\n".join(report_lines(result))
    print(text)
    if args.write:
        command = " ".join(result.get("argv", sys.argv[1:]))
        (ROOT / "bench" / "results-portal.md").write_text(
            f"# The approvals portal under load\n\n`.venv/bin/python -m bench.portal_load "
            f"{command}`\n\nMachine: {result['cores']} cores, shared with other work (the "
            f"rest of the machine's CPU is given for each row).\n\n{text}\n")
        say("written to bench/results-portal.md")


if __name__ == "__main__":
    main()
