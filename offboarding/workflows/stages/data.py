"""Transition support: the client's data exported for their data steward, redone until
the steward verifies it (the gate ``models/gates.DATA``, run by the one gate loop); our
copy is deleted once the retention period has passed."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from offboarding.activities.data_transfer import DataTransfer
from offboarding.models.gates import DATA
from offboarding.models.records import ExportRequest, PurgeRequest
from offboarding.models.stages import Stage, StepKey
from offboarding.workflows.context import Run
from offboarding.workflows.gate_loop import Issued, decide
from offboarding.workflows.mail import email
from offboarding.workflows.problems import until_done
from offboarding.workflows.sending import RETRY_FOREVER, cause
from offboarding.workflows.state import Answer


async def data_transfer(run: Run) -> None:
    s, t = run.s, run.inp.timings
    steward = run.client.contacts.data_steward.email
    run.enter(Stage.DATA_TRANSFER)
    data_sets = [(d.name, d.path) for d in run.client.data_sets]
    if not data_sets:
        run.mark(StepKey.DATA_TRANSFER, "skipped", "no client data sets listed")
        run.mark(StepKey.DATA_RETENTION, "skipped", "nothing to delete")
        return
    verifiers = DATA.deciders_in(run.client)
    exported = None

    async def issue() -> Issued | None:
        nonlocal exported
        attempt = len(s.status.data_packages) + 1
        request = ExportRequest(workflow_id=run.workflow_id, run_id=s.status.run_id,
                                client_id=run.client.client_id, attempt=attempt,
                                data_sets=data_sets)
        package = await until_done(run, f"export-{attempt}", StepKey.DATA_TRANSFER,
                                   functools.partial(
            workflow.execute_activity_method, DataTransfer.export_client_data, request,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
            summary=f"export client data, attempt {attempt}"))
        if package is None:
            return None
        exported = package
        s.status.data_packages.append(package)
        extra = {"package": package.model_dump(mode="json")}

        async def tell(links: bool) -> None:
            if not links:
                await email(run, f"data-ready-{attempt}", template="data_ready",
                            step=StepKey.DATA_TRANSFER, to=[steward], extra=extra)
            elif steward.casefold() not in {v.casefold() for v in verifiers}:
                # The steward is told; those who verify have the links.
                await email(run, f"data-ready-{attempt}", template="data_ready",
                            step=StepKey.DATA_TRANSFER, to=[steward],
                            extra={**extra, "verifiers_have_links": True})

        return Issued(
            document=package.manifest_sha256, key=f"data-ready-{attempt}", context=extra,
            told=[steward], tell=tell,
            detail=f"export {attempt}: {package.files} files, "
                   f"manifest {package.manifest_sha256[:12]}",
            how="Verify the checksum of manifest.json: offboarding verify-data "
                f"{run.workflow_id} --checksum <sha256> --by <you>")

    async def rejected(answer: Answer) -> bool:
        return True

    result = await decide(run, DATA, issue, rejected, reminder_days=t.data_reminder_days,
                          escalation_days=t.data_escalation_days)
    if result is None:
        run.mark(StepKey.DATA_TRANSFER, "skipped", "export skipped by ops")
        run.mark(StepKey.DATA_RETENTION, "skipped", "nothing exported")
        return
    package, verified = exported, result[1]
    assert package is not None
    run.mark(StepKey.DATA_TRANSFER, "done",
             f"export {package.attempt} verified ({package.manifest_sha256[:12]})",
             by=verified.msg.by)
    purge_at = run.clock.now() + run.clock.days(run.client.retention_days)
    run.mark(StepKey.DATA_RETENTION, "waiting",
             f"our copy is deleted on {run.clock.as_date(purge_at)}")
    run.retention = asyncio.create_task(_purge_after(run, purge_at, data_sets))


async def _purge_after(run: Run, when: datetime, data_sets: list[tuple[str, str]]) -> None:
    clock = run.clock
    await workflow.sleep(max(when - clock.now(), timedelta(0)),
                         summary=f"retention: delete our copy on {clock.as_date(when)}")
    # A deletion that fails (a file that cannot be removed) is a problem ops see and
    # retry once they have fixed it, not an activity retried forever in silence.
    result = await until_done(run, "purge", StepKey.DATA_RETENTION, lambda: (
        workflow.execute_activity_method(
            DataTransfer.purge_client_data,
            PurgeRequest(workflow_id=run.workflow_id, run_id=run.s.status.run_id,
                         client_id=run.client.client_id, data_sets=data_sets),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30), retry_policy=RETRY_FOREVER,
            summary="delete our copy of the client's data",
        )))
    if result is None:
        run.mark(StepKey.DATA_RETENTION, "skipped",
                 "deletion skipped by ops: our copy was NOT deleted")
    else:
        run.s.status.data_purged = result.deleted
        run.mark(StepKey.DATA_RETENTION, "done", "deleted: " + (", ".join(result.deleted)
                                                        or "nothing left"))
    run.vis.publish()


async def end_exports(run: Run, *, purge_data: bool) -> None:
    """A cancel: the export packages are deleted at once (the steward's link then finds
    nothing to download), and so is our copy of the client's data if its retention was
    already counting (the data was handed over). A cancel stops the offboarding, so this
    is tried a few times, not waited on forever: a failure is written on the step."""
    data_sets = [(d.name, d.path) for d in run.client.data_sets] if purge_data else []
    try:
        result = await workflow.execute_activity_method(
            DataTransfer.purge_client_data,
            PurgeRequest(workflow_id=run.workflow_id, run_id=run.s.status.run_id,
                         client_id=run.client.client_id, data_sets=data_sets),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=5),
            summary="cancelled: delete the exports" + (" and our copy" if purge_data else ""))
    except ActivityError as err:
        run.mark(StepKey.DATA_RETENTION, "skipped",
                 f"cancelled; deleting the exports FAILED, delete them by hand: {cause(err)}")
        return
    run.s.status.data_purged = result.deleted
    run.mark(StepKey.DATA_RETENTION, "done", "cancelled; deleted: " + (", ".join(result.deleted)
                                                                 or "nothing left"))
