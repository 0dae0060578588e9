"""Load on the approvals portal: approvers in a closed loop of page views, a burst of
decisions, the status query alone; each measured as a Sample (latencies, errors, the CPU
each process spent, the rest of the machine's), and samples of several rounds combined.
bench/portal_load.py runs them on a stack of its own."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.profiling import TICKS, cpu_seconds, tree_cpu_seconds
from bench.stack import Stack
from bench.throughput import percentile
from offboarding.client import OffboardingClient

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
    lost: int = 0
    """Status queries the worker answered too late, asked again (its log's "Query not
    found when attempting to respond to it")."""


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
            "lost": sum(s.lost for s in samples),
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
    answered after it included (a slow one counts in the percentiles, not the rate)."""
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


def fresh_connections() -> httpx.AsyncClient:
    """An approver posting a decision: a connection of its own, not kept."""
    return httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))


def kept_connection() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=30)


async def page_views(links_: list[str], concurrency: int, seconds: float, counters: Counters,
                     keepalive: bool) -> Sample:
    async def kept(http: httpx.AsyncClient, i: int) -> str | None:
        try:
            status = (await http.get(links_[i % len(links_)])).status_code
        except httpx.HTTPError as err:
            return type(err).__name__
        return None if status == 200 else f"HTTP {status}"

    async def fresh(_: None, i: int) -> str | None:
        try:
            status = await get_on_a_new_connection(links_[i % len(links_)])
        except (OSError, TimeoutError, ValueError) as err:
            return type(err).__name__
        return None if status == 200 else f"HTTP {status}"

    if keepalive:
        return await closed_loop(concurrency, seconds, counters, kept, kept_connection)
    return await closed_loop(concurrency, seconds, counters, fresh, nullcontext)


async def get_on_a_new_connection(url: str, timeout: float = 30.0) -> int:
    """A GET on a connection of its own, read to its end and closed, as a browser opening
    a link from its mail does; the answer's status code. Written out because the load
    generator shares the two cores it measures: httpx (httpcore 1.0) spent about 2.9 ms of
    CPU a view, a fifth of it searching sys.path for sniffio on every request, as much as
    the portal's own process spent (py-spy, issue 24)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                         "Connection: close\r\n\r\n".encode())
            head = await reader.readline()  # HTTP/1.1 200 OK
            await reader.read()  # the whole page, until the portal closes
        finally:
            writer.close()
    version, _, rest = head.decode("latin-1").partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise ValueError(f"not an HTTP answer: {head[:40]!r}")
    return int(rest[:3])


async def decision_burst(links_: list[str], counters: Counters) -> Sample:
    """Every link's approval at once, each from its own approver: the POST of the page's
    form, answered by a 303 to the page once the workflow has accepted it."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def decide(link: str) -> None:
        base, token = link.rsplit("/", 1)
        async with fresh_connections() as http:
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
