"""Throughput of whole offboardings against the same-shape skeleton, on one machine:
the dev server (SQLite file) or a real cluster (devtools/cluster.py: two temporal-server
hosts on PostgreSQL), the worker process, the SMTP and SCIM servers, all real.

Days are shortened (``--day-ms``) and the benchmark plays the humans: it finds each
offboarding waiting on a person through visibility and sends the update at once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError

from bench.profiling import Sampler
from bench.skeleton import Shape, SkeletonOffboarding, shape_of
from bench.stack import CpuMeter, Stack, say
from devtools.examples import example_client
from devtools.humans import NEEDS_STATUS, answer
from offboarding.client import OffboardingClient
from offboarding.models import search_attributes as sa
from offboarding.models.client_file import ClientFile
from offboarding.models.stages import Wait
from offboarding.models.status import Timings
from offboarding.temporal import connect, register_search_attributes

ROOT = Path(__file__).resolve().parent.parent
STALL_SECONDS = 300  # with no completion for this long, the run is stuck: stop, say so
HUMAN_WAITS = tuple(str(w) for w in (Wait.MEETING, Wait.SETTLEMENT_APPROVAL,
                                      Wait.DATA_VERIFICATION, Wait.FEEDBACK))


def client_files(n: int, stack: Stack, tag: str, prepare: bool = True) -> list[ClientFile]:
    """N clients like the example, each with its own data and (``prepare``) accounts."""
    end = date.today() + timedelta(days=32)
    return [example_client(tag=f"bench-{tag}-{i:05d}", data_root=stack.dir / "client-data",
                           end_date=end, scim=stack.scim if prepare else None,
                           follow_up_days=1, retention_days=1) for i in range(n)]


async def play_humans(cli: OffboardingClient, task_queue: str, n: int, progress: Any) -> None:
    """Answer every wait as soon as visibility shows it, until all N have completed: one
    list query and one count per round, so the benchmark's own load on the server stays
    small next to what it measures."""
    answered: set[tuple[Any, ...]] = set()
    busy: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()
    sem = asyncio.Semaphore(32)

    async def answer_one(wid: str, wait: Wait) -> None:
        try:
            async with sem:
                # Only the settlement and the data package need the status.
                st = await cli.status(wid) if wait in NEEDS_STATUS else None
                found = answer(wait, st, ops="bench")
                if found is None or (wid, *found.once) in answered:
                    return
                answered.add((wid, *found.once))
                await cli.send(wid, found.action, found.message)
        finally:
            busy.discard(wid)

    base = f'WorkflowType = "ClientOffboarding" AND TaskQueue = "{task_queue}"'
    waits = ", ".join(f'"{w}"' for w in HUMAN_WAITS)
    query = f'{base} AND ExecutionStatus = "Running" AND {sa.WAITING_FOR.name} IN ({waits})'
    progress_at, last_done = time.monotonic(), -1
    while True:
        async for wf in cli.client.list_workflows(query):
            if wf.id in busy:
                continue
            waiting = wf.typed_search_attributes.get(sa.WAITING_FOR) or []
            wait = next((Wait(w) for w in waiting if w in HUMAN_WAITS), None)
            if wait is not None:
                busy.add(wf.id)
                task = asyncio.create_task(answer_one(wf.id, wait))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        done = (await cli.client.count_workflows(
            f'{base} AND ExecutionStatus = "Completed"')).count
        progress(done)
        if done >= n:
            return
        if done != last_done:
            progress_at, last_done = time.monotonic(), done
        elif time.monotonic() - progress_at > STALL_SECONDS:
            raise RuntimeError(f"no offboarding completed in {STALL_SECONDS} s ({done}/{n} "
                               "done): stuck")
        await asyncio.sleep(0.25)


@dataclass
class Phase:
    name: str
    n: int
    seconds: float
    activities: int
    latencies: list[float]
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds per offboarding by process (see CpuMeter)."""

    @property
    def per_minute(self) -> float:
        return self.n / self.seconds * 60

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile by rank (nearest rank below); NaN when there is nothing to rank."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def closed_latencies(client: Client, workflow_type: str, task_queue: str) -> list[float]:
    out = []
    async for wf in client.list_workflows(
            f'WorkflowType = "{workflow_type}" AND TaskQueue = "{task_queue}"'):
        if wf.close_time and wf.start_time:
            out.append((wf.close_time - wf.start_time).total_seconds())
    return out


async def approval_to_next_activity(client: Client, ids: list[str]) -> list[float]:
    """Human latency from histories: an approval update accepted -> next activity started."""
    out: list[float] = []
    for wid in ids:
        events = (await client.get_workflow_handle(wid).fetch_history()).events
        for i, ev in enumerate(events):
            if ev.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
                continue
            name = ev.workflow_execution_update_accepted_event_attributes \
                .accepted_request.input.name
            if name not in ("approve-settlement", "verify-data"):
                continue
            accepted = ev.event_time.ToDatetime()
            # The first activity scheduled after the approval, and when that one started.
            scheduled = next((e.event_id for e in events[i + 1:] if e.event_type ==
                              EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED), None)
            started = next((e for e in events[i + 1:] if e.event_type ==
                            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and
                            e.activity_task_started_event_attributes.scheduled_event_id ==
                            scheduled), None)
            if started is not None:
                out.append((started.event_time.ToDatetime() - accepted).total_seconds())
    return out


READS_STATUS = ("approve-settlement", "verify-data")
"""The updates before which the humans' driver reads the status (``NEEDS_STATUS``)."""


async def watch_like_the_humans(client: Client, task_queue: str) -> None:
    """The skeleton's phase puts the same load on visibility as the humans' driver does
    (one list of the waiting and one count of the completed every quarter second), so the
    server's CPU per workflow compares the workflows, not the two drivers."""
    base = f'WorkflowType = "SkeletonOffboarding" AND TaskQueue = "{task_queue}"'
    while True:
        async for _ in client.list_workflows(f'{base} AND ExecutionStatus = "Running" AND '
                                             f'{sa.WAITING_FOR.name} IN ("none")'):
            pass
        await client.count_workflows(f'{base} AND ExecutionStatus = "Completed"')
        await asyncio.sleep(0.25)


def progress(label: str, n: int) -> Callable[[int], None]:
    last = [-1]

    def show(done: int) -> None:
        if done != last[0]:
            last[0] = done
            say(f"  {label}: {done}/{n} completed")
    return show


async def offboardings(n: int, day_ms: int, stack: Stack, profile: Path | None = None,
                       floor: Sequence[str] | None = None) -> dict[str, Any]:
    """N offboardings on ``stack``; the phase, the approval latencies and the shape the
    skeleton copies. With ``profile``, py-spy samples the worker meanwhile and writes its
    raw stacks there. With ``floor``, the worker's activities do no work (bench/floor.py),
    but for those it names."""
    tq = "bench-offboarding"
    client = await connect(stack.address)
    await register_search_attributes(client)
    command = ["worker.py"] if floor is None else [
        "-m", "bench.floor", "--real", ",".join(floor)]
    worker = stack.start_process([sys.executable, *command], "worker.log", "worker polling")
    say(f"preparing {n} client files, accounts and data...")
    files = client_files(n, stack, "o")
    cli = OffboardingClient(client, tq)
    cli.timings = Timings(day_length=timedelta(milliseconds=day_ms),
                          meeting_deadline_days=1e6, settlement_reminder_days=1e6,
                          settlement_escalation_days=1e6, data_reminder_days=1e6,
                          data_escalation_days=1e6, feedback_deadline_days=1e6)
    say(f"offboardings: starting {n}")
    sampler = Sampler(worker.pid, profile) if profile else None
    assert stack.scim is not None
    meter = CpuMeter(stack, worker=worker, scim=stack.scim.proc)
    start = time.monotonic()
    await asyncio.gather(*[cli.start(cf) for cf in files])
    await play_humans(cli, tq, n, progress("offboardings", n))
    real = Phase("offboarding" if floor is None else "floor", n, time.monotonic() - start, 0,
                 await closed_latencies(client, "ClientOffboarding", tq), meter.per(n))
    if sampler:
        sampler.stop()
    sample = [f"offboarding-{cf.client_id}" for cf in files[:50]]
    history = await client.get_workflow_handle(sample[0]).fetch_history()
    shape: Shape = shape_of(history)
    real.activities = shape.count("activity") * n
    human = await approval_to_next_activity(client, sample)
    return {"real": real, "human": human, "shape": shape}


async def skeleton(n: int, shape: Shape, stack: Stack) -> Phase:
    """The same N as skeletons of ``shape``, with their own worker process, driven like
    the offboardings (as many updates in flight as the humans' driver allows)."""
    sk_tq = "bench-skeleton"
    client = await connect(stack.address)
    await register_search_attributes(client)
    skeleton_worker = stack.start_process(
        [sys.executable, "-m", "bench.skeleton", "--address", stack.address, "--task-queue",
         sk_tq], "skeleton.log", "skeleton worker polling")
    say(f"skeleton ({len(shape.ops)} ops: {shape.count('activity')} activities, "
        f"{shape.count('timer')} timers, {shape.count('update')} updates): starting {n}")
    assert stack.scim is not None
    meter = CpuMeter(stack, worker=skeleton_worker, scim=stack.scim.proc)
    start = time.monotonic()
    handles = await asyncio.gather(*[
        client.start_workflow(SkeletonOffboarding.run, shape, id=f"skeleton-{i:05d}",
                              task_queue=sk_tq) for i in range(n)])
    updates = [op.name for op in shape.ops if op.kind == "update"]
    sem = asyncio.Semaphore(32)
    completed: list[str] = []
    show = progress("skeleton", n)

    async def drive(handle: Any) -> None:
        for i, name in enumerate(updates):
            for attempt in range(5):
                try:
                    async with sem:
                        if name in READS_STATUS:  # as the humans read the offboarding's
                            await handle.query("status")
                        # A stable id: a retry of an update that did arrive is not doubled.
                        await handle.execute_update(name, {"by": "bench"}, id=f"{name}-{i}")
                    break
                except WorkflowUpdateRPCTimeoutOrCancelledError:
                    if attempt == 4:
                        raise
        await handle.result()
        completed.append(handle.id)
        if len(completed) % max(1, n // 10) == 0:
            show(len(completed))

    watching = asyncio.create_task(watch_like_the_humans(client, sk_tq))
    try:
        await asyncio.gather(*[drive(h) for h in handles])
    finally:
        watching.cancel()
    return Phase("skeleton", n, time.monotonic() - start, shape.count("activity") * n,
                 await closed_latencies(client, "SkeletonOffboarding", sk_tq), meter.per(n))
