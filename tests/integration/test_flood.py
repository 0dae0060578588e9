"""A flood of every message a person can grow an offboarding with, on the dev server
(issue 20, row 3): 6,000 ``fix-contact`` signals used to push the status past 2 MB, so
``status`` failed and the server terminated the offboarding at its archive step. Here the
status and every activity's input stay under ``STATUS_BUDGET`` and the offboarding ends
as it should. tests/unit/test_limits.py proves the bounds by construction."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from devtools.mailcapture import MailCapture
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import (
    ApproveSettlement,
    CompleteTask,
    FixContact,
    SkipStep,
    VerifyData,
)
from offboarding.models.status import STATUS_BUDGET, OffboardingResult, Timings
from offboarding.workflows.state import MAX_DECISIONS_PER_ACTION, MAX_PROPOSALS
from tests.helpers import client_file, new_worker, status_of, wait_until, waiting_for

PATIENT = Timings(day_length=timedelta(milliseconds=100), settlement_reminder_days=1000,
                  settlement_escalation_days=1000, data_reminder_days=1000,
                  data_escalation_days=1000)
LONG = "x" * 5000


async def _all(sends: Sequence[Awaitable[Any]], at_once: int = 20) -> None:
    gate = asyncio.Semaphore(at_once)

    async def one(send: Awaitable[Any]) -> None:
        async with gate:
            await send

    await asyncio.gather(*(one(s) for s in sends))


async def test_a_flood_of_every_kind_keeps_the_status_and_activity_inputs_small(
    dev_env: WorkflowEnvironment, settings: Settings, mail: MailCapture, scim: ScimServer,
) -> None:
    cf = client_file("termination", scim=scim, follow_up_days=1, retention_days=1)
    cli = OffboardingClient(dev_env.client, settings.task_queue)
    async with new_worker(dev_env.client, settings):
        wid = await cli.start(cf, PATIENT)
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("settlement-approval"), what="settlement")
        signal = handle.signal
        await _all(
            # one name, ever new addresses (row 3 as reported)
            [signal("fix-contact", FixContact(by="dana", role="billing",
                                              email=f"ap{n}@evil.example"))
             for n in range(300)]
            # many names, one proposal each
            + [signal("fix-contact", FixContact(by=f"ops{n}", role="primary",
                                                email=f"p{n}@evil.example"))
               for n in range(30)]
            # messages that are refused and recorded, with the longest text they carry
            + [signal("skip-step", SkipStep(by="o" * 200, problem="no-such", reason=LONG))
               for _ in range(200)]
            + [signal("no-such-action", {"by": LONG}) for _ in range(50)]
            + [signal("complete-task", CompleteTask(by="ops", task=t.key, note=LONG))
               for t in st.tasks])
        st = await wait_until(handle, lambda s: s.ignored_total >= 250, timeout=120,
                              what="the flood taken")

        size = len(st.model_dump_json().encode())
        assert size < STATUS_BUDGET, size
        assert len(st.proposals) <= MAX_PROPOSALS
        kinds = Counter(d.action.removesuffix(" (proposed)") for d in st.decisions)
        assert max(kinds.values()) <= MAX_DECISIONS_PER_ACTION, kinds

        # And the offboarding goes on to the end, archive included.
        await cli.send(wid, "approve-settlement", ApproveSettlement(
            by=cf.approvers.finance[0], statement_hash=st.statements[-1].hash))
        st = await wait_until(handle, waiting_for("data-verification"))
        await cli.send(wid, "verify-data", VerifyData(
            by=cf.approvers.data_verification[0],
            checksum=st.data_packages[-1].manifest_sha256))
        typed = dev_env.client.get_workflow_handle(wid, result_type=OffboardingResult)
        result = await asyncio.wait_for(typed.result(), 120)
        assert result.outcome == "completed" and result.status.archive is not None
        assert len((await status_of(handle)).model_dump_json()) < STATUS_BUDGET
        history = await handle.fetch_history()
    inputs = [sum(p.ByteSize() for p in e.activity_task_scheduled_event_attributes.input.payloads)
              for e in history.events
              if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert inputs and max(inputs) < STATUS_BUDGET, max(inputs)
