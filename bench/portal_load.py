"""The approvals portal under load (issue 24): page views and decisions from C concurrent
approvers, with the portal as ``make run`` starts it (``python -m offboarding.portal.main``,
one process) and with several processes (``OFFBOARDING_PORTAL_WORKERS``).

A stack of its own on free ports (bench/throughput.py's: the dev server on a SQLite file,
aiosmtpd, the SCIM server), the worker process, payloads encrypted and links signed as
under ``make run``. It starts terminations, which ask finance to approve a settlement and
the client's data steward to verify an export at once, and takes the real signed links
from the captured mail. Then, for each number of portal processes:

- **page views**: for each C, C approvers in a closed loop for a fixed time, each with an
  httpx client of its own, each view a GET of one of the links (finance's and the
  steward's, over all the offboardings, in turn) on a new connection, as people opening
  their mail do; pages/s, p50/p95/p99, and every answer but a 200 counted as an error;
- **decisions**: a burst of K approvals of K other offboardings' settlements, all at
  once, each from its own approver: the POST of the page's form up to its 303.

CPU seconds of the portal's processes, the worker, the Temporal server and this process
(the load generator, on the same cores) are read from /proc around each run. Once, the
status query alone (what every page asks Temporal) is timed from this process, 1 and 10
at a time, to show how much of a page it is.

``measure`` and ``report_lines`` are what ``bench/run.py`` uses; run alone,
``.venv/bin/python -m bench.portal_load --write`` writes ``bench/results-portal.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.profiling import cpu_seconds, tree_cpu_seconds
from bench.throughput import Stack, percentile, say
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


class Counters:
    """CPU seconds so far, by process: the portal's (its processes, living and reaped),
    the worker's, the Temporal server's and this one's."""

    def __init__(self, stack: Stack, worker: int) -> None:
        assert stack.server is not None and stack.server.proc is not None
        self.server, self.worker = stack.server.proc.pid, worker
        self.portal: int | None = None

    def read(self) -> dict[str, float]:
        return {"portal": tree_cpu_seconds(self.portal) if self.portal else 0.0,
                "worker": cpu_seconds(self.worker), "server": cpu_seconds(self.server),
                "bench": time.process_time()}

    async def quiet(self, timeout: float = 60.0) -> None:
        """Until the worker and the server have been nearly idle for a second (what an
        earlier run set going has finished), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = cpu_seconds(self.worker) + cpu_seconds(self.server)
            await asyncio.sleep(1.0)
            if cpu_seconds(self.worker) + cpu_seconds(self.server) - before < 0.1:
                return


def _cpu_ms_per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    return {k: (after[k] - before[k]) * 1000 / n if n else float("nan") for k in before}


STALL = 5.0
"""Seconds: a view this slow is a stall, not queueing (see ``limits``)."""


def _summary(latencies: list[float], errors: Counter[str], seconds: float,
             cpu: dict[str, float], counted: int | None = None) -> dict[str, Any]:
    """``counted``: the answers within the window the rate is over (all by default)."""
    n = len(latencies) if counted is None else counted
    return {"ok": len(latencies), "errors": errors.total(), "error_kinds": dict(errors),
            "seconds": seconds, "per_s": n / seconds,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p95_ms": percentile(latencies, 0.95) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "max_ms": max(latencies, default=float("nan")) * 1000,
            "stalls": sum(1 for x in latencies if x > STALL),
            "cpu_ms": cpu, "load": os.getloadavg()[0]}


async def closed_loop(concurrency: int, seconds: float, counters: Counters,
                      request: Callable[[Any, int], Awaitable[str | None]],
                      client: Callable[[], AbstractAsyncContextManager[Any]]
                      ) -> dict[str, Any]:
    """``concurrency`` approvers, each with its own client, each sending its next request
    as soon as its last one is answered, for ``seconds``; ``request(http, i)`` sends the
    i-th and returns None, or what went wrong. The rate (and CPU per request) counts the answers
    within the window; the latencies are every request's started in it, those answered
    after it included (a stalled one counts in the percentiles, not in the rate)."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    within = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + seconds

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
    return _summary(latencies, errors, seconds, _cpu_ms_per(before, after, counted), counted)


def _fresh_connections() -> httpx.AsyncClient:
    """An approver's browser: no connection kept between views (a view is a person
    opening a link from their mail)."""
    return httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def _kept_connection() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30)


async def page_views(links_: list[str], concurrency: int, seconds: float, counters: Counters,
                     keepalive: bool) -> dict[str, Any]:
    async def view(http: httpx.AsyncClient, i: int) -> str | None:
        try:
            status = (await http.get(links_[i % len(links_)])).status_code
        except httpx.HTTPError as err:
            return type(err).__name__
        return None if status == 200 else f"HTTP {status}"

    return await closed_loop(concurrency, seconds, counters, view,
                             _kept_connection if keepalive else _fresh_connections)


async def decision_burst(links_: list[str], counters: Counters) -> dict[str, Any]:
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
    return _summary(latencies, errors, elapsed,
                    _cpu_ms_per(before, counters.read(), len(latencies)))


async def query_alone(cli: OffboardingClient, wids: list[str], concurrency: int,
                      seconds: float, counters: Counters) -> dict[str, Any]:
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
    """What the portal logged going wrong since ``offset``: the distinct last lines of
    its tracebacks (a 500 is logged with one)."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    found = [line.strip() for i, line in enumerate(lines)
             if i > 0 and lines[i - 1].startswith(" ") and not line.startswith((" ", "INFO"))
             and ("Error" in line or "Exception" in line)]
    return list(dict.fromkeys(found))[:3]


async def _check_pages(links_: list[str]) -> None:
    """Every link opens its page, with a decision to take (what the load then asks)."""
    async with _kept_connection() as http:
        for link in links_:
            page = await http.get(link)
            if page.status_code != 200 or 'name="token"' not in page.text:
                raise RuntimeError(f"{link}: HTTP {page.status_code}, no decision offered")


async def run(stack: Stack, *, seconds: float, workers: tuple[int, ...],
              approvers: tuple[int, ...], offboardings: int, decisions: int,
              keepalive: bool) -> dict[str, Any]:
    """Everything, on a started stack (``stack.start(TASK_QUEUE)``)."""
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
    total = offboardings + decisions * len(workers)
    say(f"portal: starting {total} terminations ({offboardings} for page views, "
        f"{decisions} to decide per portal setting)")
    started = await _offboardings(cli, stack, total)
    wids = list(started)
    viewed = wids[:offboardings]
    pages = [started[w][who] for w in viewed for who in ("finance", "steward")]
    result: dict[str, Any] = {"seconds": seconds, "offboardings": offboardings,
                              "links": len(pages), "keepalive": keepalive,
                              "cores": os.cpu_count(), "pages": [], "decisions": [],
                              "query": []}
    for n, count in enumerate(workers):
        proc = _start_portal(stack, count)
        log = stack.dir / f"portal-{count}.log"
        counters.portal = proc.pid
        try:
            await _check_pages(pages)  # and the processes have their templates and clients
            for c in approvers:
                await counters.quiet()
                say(f"  {count} portal process(es), {c} approvers: {seconds:g} s of page views")
                offset = log.stat().st_size
                r = await page_views(pages, c, seconds, counters, keepalive)
                r["served_by"] = _served_by(log, offset)
                if r["errors"]:
                    r["portal_errors"] = _failures(log, offset)
                say(f"    {r['per_s']:.0f} pages/s, p50 {r['p50_ms']:.0f} ms, p99 "
                    f"{r['p99_ms']:.0f} ms, {r['errors']} errors")
                result["pages"].append({"workers": count, "approvers": c, **r})
            await counters.quiet()
            mine = wids[offboardings + n * decisions: offboardings + (n + 1) * decisions]
            r = await decision_burst([started[w]["finance"] for w in mine], counters)
            say(f"  {count} portal process(es): {decisions} decisions at once, "
                f"{r['per_s']:.1f}/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
                f"{r['errors']} errors")
            result["decisions"].append({"workers": count, "k": decisions, **r})
        finally:
            stop(proc)
            stack.procs.remove(proc)
            counters.portal = None
    for c in (1, 10):
        await counters.quiet()
        say(f"  the status query alone, {c} at a time")
        r = await query_alone(cli, viewed, c, seconds, counters)
        result["query"].append({"concurrency": c, **r})
    return result


async def measure(seconds: float = 15.0, workers: tuple[int, ...] = (1, 2, 4),
                  approvers: tuple[int, ...] = (1, 10, 50), offboardings: int = 24,
                  decisions: int = 20, keepalive: bool = False) -> dict[str, Any]:
    """On a stack of its own, removed afterwards (kept and named when the run fails)."""
    tmp = Path(tempfile.mkdtemp(prefix="offboarding-bench-portal-"))
    stack = Stack(tmp)
    try:
        stack.start(TASK_QUEUE)
        result = await run(stack, seconds=seconds, workers=workers, approvers=approvers,
                           offboardings=offboardings, decisions=decisions,
                           keepalive=keepalive)
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
            f"{result['offboardings']} offboardings; {result['seconds']:g} s each; "
            f"{connection}; a view slower than {STALL:g} s is a stall):", "",
            "| portal processes | approvers | pages/s | p50 ms | p95 ms | p99 ms | max ms | "
            "stalls | errors | CPU ms per page: portal / worker / server / load generator | "
            "views per process % | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["pages"]:
        cpu = r["cpu_ms"]
        out.append(f"| {r['workers']} | {r['approvers']} | {r['per_s']:.0f} | "
                   f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | "
                   f"{r['max_ms']:,.0f} | {r['stalls']} | {r['errors']} | "
                   f"{cpu['portal']:.1f} / {cpu['worker']:.1f} / {cpu['server']:.1f} / "
                   f"{cpu['bench']:.1f} | {_shares(r)} | {r['load']:.1f} |")
    failed = [f"{r['workers']} process(es), {r['approvers']} approvers: "
              + ", ".join(f"{n} {kind}" for kind, n in r["error_kinds"].items())
              + "".join(f" (the portal logged `{line[:300]}`)"
                        for line in r.get("portal_errors", []))
              for r in result["pages"] if r["errors"]]
    if failed:
        out += ["", "Errors: " + "; ".join(failed) + "."]
    out += ["", "Decisions (the form's POST up to its 303, K offboardings' approvals at once):",
            "", "| portal processes | K | decisions/s | p50 ms | p99 ms | max ms | errors | "
            "CPU ms per decision: portal / worker / server |",
            "|---|---|---|---|---|---|---|---|"]
    for r in result["decisions"]:
        cpu = r["cpu_ms"]
        out.append(f"| {r['workers']} | {r['k']} | {r['per_s']:.1f} | {r['p50_ms']:.0f} | "
                   f"{r['p99_ms']:.0f} | {r['max_ms']:,.0f} | {r['errors']} | "
                   f"{cpu['portal']:.1f} / {cpu['worker']:.1f} / {cpu['server']:.1f} |")
    out += ["", "The status query alone (what each page asks Temporal), from the benchmark's "
            "process:", "", "| at a time | queries/s | p50 ms | p95 ms | p99 ms | max ms | "
            "stalls | CPU ms per query: worker / server / this process |",
            "|---|---|---|---|---|---|---|---|"]
    for r in result["query"]:
        cpu = r["cpu_ms"]
        out.append(f"| {r['concurrency']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | "
                   f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:,.0f} | "
                   f"{r['stalls']} | {cpu['worker']:.1f} / {cpu['server']:.1f} / "
                   f"{cpu['bench']:.1f} |")
    return [*out, "", *limits(result)]


def _shares(r: dict[str, Any]) -> str:
    served = r.get("served_by") or []
    if len(served) < 2:
        return "-"
    return " / ".join(f"{100 * n / sum(served):.0f}" for n in served)


def _processes(result: dict[str, Any]) -> list[str]:
    """Several portal processes against one, in words."""
    runs = {(r["workers"], r["approvers"]): r for r in result["pages"]}
    counts = sorted({w for w, _ in runs})
    if len(counts) < 2 or counts[0] != 1:
        return []
    more = counts[1:]
    said = []
    for c in sorted({c for _, c in runs}):
        if c == 1 or (1, c) not in runs:
            continue
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
        f"On this machine more processes buy no throughput; what they buy is a portal "
        f"that survives one process's death.",
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
    if busy >= 0.75 * cores:
        verdict_cpu = "the machine's CPU is what runs out, shared by the four, not one process"
    else:
        verdict_cpu = ("no one process is saturated; the rest went to whatever else ran on "
                       "the machine (the load column) and to waiting in the query's path")
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
        f"the {cores} cores: {verdict_cpu}. CPU alone would allow about "
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
        f"with the worker's timeout at 3 s the stalls took 3 s; none in 5,154 queries one "
        f"at a time, 1 in 6,527 two at a time, about 1 in 1,000 from 5 to 20 at a time, "
        f"whether or not two queries ask the same offboarding at once. A stalled view holds "
        f"its approver for 10 s: in a closed loop that is lost throughput as well as the "
        f"tail.",
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
    p.add_argument("--seconds", type=float, default=15.0, help="each page-view run")
    p.add_argument("--workers", type=_ints, default=(1, 2, 4),
                   help="portal processes, comma-separated (1: as make run starts it)")
    p.add_argument("--approvers", type=_ints, default=(1, 10, 50),
                   help="concurrent approvers, comma-separated")
    p.add_argument("--offboardings", type=int, default=24,
                   help="offboardings whose two links the page views spread over")
    p.add_argument("--decisions", type=int, default=20,
                   help="K: approvals sent at once, per number of portal processes")
    p.add_argument("--keepalive", action="store_true",
                   help="each approver keeps its connection (default: a new one per view)")
    p.add_argument("--write", action="store_true", help="write bench/results-portal.md")
    args = p.parse_args()
    result = asyncio.run(measure(args.seconds, args.workers, args.approvers,
                                 args.offboardings, args.decisions, args.keepalive))
    text = "\n".join(report_lines(result))
    print(text)
    if args.write:
        (ROOT / "bench" / "results-portal.md").write_text(
            f"# The approvals portal under load\n\n`.venv/bin/python -m bench.portal_load "
            f"{' '.join(sys.argv[1:])}`\n\nMachine: {os.cpu_count()} cores; the 1-minute "
            f"load average is given for each run (this benchmark's own load included).\n\n"
            f"{text}\n")
        say("written to bench/results-portal.md")


if __name__ == "__main__":
    main()
