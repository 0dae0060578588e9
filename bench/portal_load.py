"""The approvals portal under load (issue 24): page views and decisions from C concurrent
approvers, with the portal as ``make run`` starts it (``python -m offboarding.portal.main``,
one process) and with several processes (``OFFBOARDING_PORTAL_WORKERS``).

A stack of its own on free ports (bench/throughput.py's: the dev server on a SQLite file,
aiosmtpd, the SCIM server), the worker process, payloads encrypted and links signed as
under ``make run``. It starts terminations, which ask finance to approve a settlement and
the client's data steward to verify an export at once, and takes the real signed links
from the captured mail: 200 offboardings' links by default, over which the views are
spread as a month-end burst's are (1,000 offboardings). Not 24, as before: each was then
viewed about ten times a second, so the few status queries sdk-core loses (one in 2,000
to 5,000 here) soon cleared the sticky queue of many of them, which made the later rounds
pay the cost measured last (below) and the rounds slow down one after another.

Then, in each of ``--rounds`` rounds (3), for each number of portal processes (1, 2, 4,
in a turning order, so that whatever else the machine is doing falls on each alike):

- **page views**: for each C, C approvers in a closed loop for a fixed time, each view a
  GET of one of the links (finance's and the steward's, over all the offboardings, in
  turn) on a new connection, as people opening their mail do; pages/s, p50/p95/p99, and
  every answer but a 200 counted as an error;
- **decisions**: a burst of K approvals of K other offboardings' settlements, all at
  once, each from its own approver: the POST of the page's form up to its 303.

and, once a round, the status query alone (what every page asks Temporal) from this
process, 1 and 10 at a time, to show how much of a page it is; last, the same once the
server has cleared every offboarding's sticky queue (ResetStickyTaskQueue), as it does
for one whose query was lost and for each, on its next query, once the worker that held
it is gone: each query then carries the whole history, for the server to read and the
worker to decode. Each row reports its rounds together (pages/s over their windows,
percentiles over all their views).

CPU seconds of the portal's processes, the worker, the Temporal server and this process
(the load generator, on the same cores) are read from /proc around each run, and the
whole machine's, so that the CPU other work took meanwhile is shown beside the figures.

``measure`` (here) and ``report_lines`` (bench/portal_report.py) are what ``bench/run.py``
uses; run alone,
``.venv/bin/python -m bench.portal_load --write`` writes ``bench/results-portal.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client

from bench.load import (
    Counters,
    Sample,
    combine,
    decision_burst,
    kept_connection,
    page_views,
    query_alone,
)
from bench.portal_report import LOST, report_lines
from bench.stack import Stack, fresh_stack, say
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
FINANCE, STEWARD = "final settlement v1", "ready for transfer"
READY = "Application startup complete"
QUERY_CONCURRENCY = (1, 10)
"""How many status queries at a time when the query is timed alone."""


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


def _since(log: Path, offset: int) -> str:
    """What a process wrote to its log since ``offset``."""
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _served_by(log: Path, offset: int) -> list[int]:
    """Views each portal process served since ``offset`` in its log, most first (several
    processes' log lines name their pid)."""
    return sorted(Counter(SERVED.findall(_since(log, offset))).values(), reverse=True)


def _lost(log: Path, offset: int) -> int:
    """Status queries the worker answered too late since ``offset`` in its log."""
    return _since(log, offset).count(LOST)


def _failures(log: Path, offset: int) -> list[str]:
    """What the portal logged going wrong since ``offset``: the exception each traceback
    ends with (a 500 is logged with one), distinct, the first three. Several processes'
    lines may interleave: an access line inside a traceback is skipped."""
    found, inside = [], False
    for line in _since(log, offset).splitlines():
        if line.startswith("Traceback (most recent call last)"):
            inside = True
        elif inside and line and not line[0].isspace() and not line.startswith(
                ("INFO", "WARNING", "ERROR", "During handling", "The above exception")):
            found.append(line.strip())
            inside = False
    return list(dict.fromkeys(found))[:3]


async def _clear_stickiness(client: Client, wids: list[str]) -> None:
    """Have the server forget which worker holds each offboarding (ResetStickyTaskQueue):
    its next queries go to the shared queue, with the whole history, until its next
    workflow task."""
    for wid in wids:
        await client.workflow_service.reset_sticky_task_queue(ResetStickyTaskQueueRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=wid)))


async def _check_pages(links_: list[str]) -> None:
    """Every link opens its page, with a decision to take (what the load then asks)."""
    async with kept_connection() as http:
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
    worker_log = stack.dir / "worker.log"
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
    cleared: dict[int, list[Sample]] = {}

    async def time_queries(into: dict[int, list[Sample]]) -> None:
        """The status query alone over the viewed offboardings, 1 and 10 at a time."""
        for c in QUERY_CONCURRENCY:
            await counters.quiet()
            at = worker_log.stat().st_size
            alone = await query_alone(cli, viewed, c, seconds, counters)
            alone.lost = _lost(worker_log, at)
            into.setdefault(c, []).append(alone)

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
                    offset, at = log.stat().st_size, worker_log.stat().st_size
                    sample = await page_views(pages, c, seconds, counters, keepalive)
                    sample.served_by = _served_by(log, offset)
                    sample.lost = _lost(worker_log, at)
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
        await time_queries(queries)
        say(f"  round {round_ + 1}/{rounds}: the status query alone, 1 and 10 at a time")
    # Last, as it leaves them so: the query once the server has cleared the sticky queue of
    # every offboarding viewed, as it does for one after a lost query and for all of them
    # when the worker that held them is gone (a restart, a deploy).
    await _clear_stickiness(client, viewed)
    await time_queries(cleared)
    say("  the status query alone, each offboarding's sticky queue cleared")
    return {"seconds": seconds, "rounds": rounds, "offboardings": offboardings,
            "links": len(pages), "keepalive": keepalive, "cores": os.cpu_count(),
            "pages": [{"workers": w, "approvers": c, **combine(views[w, c])}
                      for w in workers for c in approvers],
            "decisions": [{"workers": w, "k": decisions, **combine(bursts[w])}
                          for w in workers],
            "query": [{"concurrency": c, "cleared": flag, **combine(samples[c])}
                      for flag, samples in ((False, queries), (True, cleared))
                      for c in QUERY_CONCURRENCY]}


async def measure(seconds: float = 10.0, rounds: int = 3,
                  workers: tuple[int, ...] = (1, 2, 4),
                  approvers: tuple[int, ...] = (1, 10, 50), offboardings: int = 200,
                  decisions: int = 10, keepalive: bool = False) -> dict[str, Any]:
    """On a stack of its own, removed afterwards (kept and named when the run fails)."""
    async with fresh_stack(task_queue=TASK_QUEUE) as stack:
        return await run(stack, seconds=seconds, rounds=rounds, workers=workers,
                         approvers=approvers, offboardings=offboardings,
                         decisions=decisions, keepalive=keepalive)


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
    p.add_argument("--offboardings", type=int, default=200,
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
