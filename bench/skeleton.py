"""The baseline: a workflow with the same shape as a real offboarding (the same activities,
fired timers, search-attribute upserts and human updates, in the same order) whose
activities do nothing. Its shape is read from a real offboarding's history, so what it
costs is Temporal's share of an offboarding; the difference is our own code's."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from offboarding.models import search_attributes as sa

# Which wait each human update answers, as the real workflow publishes it.
WAIT_FOR_UPDATE = {"meeting-held": "meeting", "approve-settlement": "settlement-approval",
                   "verify-data": "data-verification", "record-feedback": "feedback"}


class Op(BaseModel):
    kind: str  # "activity", "timer", "upsert", "update"
    seconds: float = 0.0
    name: str = ""


class Shape(BaseModel):
    ops: list[Op]

    def count(self, kind: str) -> int:
        return sum(1 for op in self.ops if op.kind == kind)


def shape_of(history: WorkflowHistory) -> Shape:
    ops: list[Op] = []
    timers: dict[str, float] = {}
    for event in history.events:
        t = event.event_type
        if t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            ops.append(Op(kind="activity"))
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            timers[attrs.timer_id] = attrs.start_to_fire_timeout.ToTimedelta().total_seconds()
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            ops.append(Op(kind="timer",
                          seconds=timers[event.timer_fired_event_attributes.timer_id]))
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            ops.append(Op(kind="upsert"))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = event.workflow_execution_update_accepted_event_attributes \
                .accepted_request.input.name
            if name in WAIT_FOR_UPDATE:
                ops.append(Op(kind="update", name=name))
    return Shape(ops=ops)


@activity.defn(name="skeleton_noop")
async def noop() -> None:
    """Does nothing: the baseline measures Temporal, not our activities."""


@workflow.defn(name="SkeletonOffboarding")
class SkeletonOffboarding:
    def __init__(self) -> None:
        self.received: dict[str, int] = {}

    @workflow.run
    async def run(self, shape: Shape) -> int:
        expected: dict[str, int] = {}
        for op in shape.ops:
            if op.kind == "activity":
                await workflow.execute_activity(
                    noop, start_to_close_timeout=timedelta(seconds=30))
            elif op.kind == "timer":
                await asyncio.sleep(op.seconds)
            elif op.kind == "upsert":
                workflow.upsert_search_attributes([sa.STAGE.value_set("skeleton")])
            elif op.kind == "update":
                # The driver sends every update right after the start; the skeleton
                # consumes them in the real order.
                expected[op.name] = expected.get(op.name, 0) + 1
                await workflow.wait_condition(
                    functools.partial(self._has, op.name, expected[op.name]))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return len(shape.ops)

    @workflow.query
    def status(self) -> dict[str, Any]:
        """What the humans' driver reads before the settlement and the data verification,
        as it reads the offboarding's status there (bench/throughput.py)."""
        return {"stage": "skeleton", "received": dict(self.received)}

    def _has(self, name: str, count: int) -> bool:
        return self.received.get(name, 0) >= count

    @workflow.update(dynamic=True)
    def decide(self, name: str, args: Sequence[RawValue]) -> dict[str, Any]:
        self.received[name] = self.received.get(name, 0) + 1
        return {"accepted": True, "stage": "skeleton", "detail": name}


def main() -> None:
    """The skeleton's worker, a process of its own like the real worker."""
    import argparse

    from temporalio.worker import Worker

    from offboarding.temporal import connect
    from offboarding.worker import workflow_runner

    p = argparse.ArgumentParser()
    p.add_argument("--address", required=True)
    p.add_argument("--task-queue", required=True)
    p.add_argument("--sandbox", action="store_true",
                   help="run it in Temporal's sandbox (the worker's OFFBOARDING_WORKFLOW_SANDBOX)")
    args = p.parse_args()

    async def serve() -> None:
        client = await connect(args.address)
        # The same runner as the worker's, so the difference stays our own code's.
        async with Worker(client, task_queue=args.task_queue, workflows=[SkeletonOffboarding],
                          activities=[noop], workflow_runner=workflow_runner(args.sandbox)):
            print("skeleton worker polling", flush=True)
            await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
