"""The pre-deploy check (issue 14): histories of live offboardings on the dev server,
replayed against the code on disk. It passes for the code that wrote them, and catches a
deliberately incompatible change, naming the offboarding it would break."""

from __future__ import annotations

import io
from datetime import timedelta

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment

from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import Cancel
from offboarding.models.status import OffboardingInput
from offboarding.replay_check import run
from tests.helpers import client_file, new_worker, wait_until, waiting_for
from tests.integration.test_portal import PATIENT


@workflow.defn(name="ClientOffboarding", sandboxed=False)
class SleepsFirst:
    """An incompatible change: the new code waits a day before anything else, so the
    commands it issues differ from those every history starts with."""

    @workflow.run
    async def run(self, inp: OffboardingInput) -> None:
        await workflow.sleep(timedelta(days=1))


async def test_replay_check_passes_today_and_catches_an_incompatible_change(
        dev_env: WorkflowEnvironment, settings: Settings, scim: ScimServer) -> None:
    cf = client_file("termination", scim=scim)
    async with new_worker(dev_env.client, settings):
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        wid = await cli.start(cf, PATIENT)
        await wait_until(dev_env.client.get_workflow_handle(wid),
                         waiting_for("settlement-approval"))
        # Only this test's offboarding: the session's server holds other tests' too, some
        # with poison payloads that only the worker's forgiving codec reads.
        only = ["--where", f'WorkflowId = "{wid}"']
        out = io.StringIO()
        assert await run(only, client=dev_env.client, out=out) == 0, out.getvalue()
        assert f"ok     {wid} (RUNNING)" in out.getvalue()

        broken = io.StringIO()
        code = await run(only, client=dev_env.client, out=broken, workflows=[SleepsFirst])
        text = broken.getvalue()
        assert code == 1
        assert f"BROKEN {wid} (RUNNING)" in text and "Do not deploy" in text
        assert f"1 of 1 histories do not replay against this code; the first: {wid}" in text
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
