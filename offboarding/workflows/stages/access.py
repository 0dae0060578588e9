"""Access revocation: every listed system at once, over SCIM; a system that needs ops
(a refused token) waits for them alone while the others finish."""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import workflow

from offboarding.activities.access import AccessRevoker
from offboarding.models.client_file import SystemAccess
from offboarding.models.records import RevokeRequest, SystemRevocation
from offboarding.models.stages import Stage, StepKey
from offboarding.workflows.context import Run
from offboarding.workflows.mail import email
from offboarding.workflows.problems import until_done
from offboarding.workflows.sending import RETRY_FOREVER
from offboarding.workflows.waits import together


def _revoke(run: Run, sys: SystemAccess) -> Awaitable[SystemRevocation]:
    return workflow.execute_activity_method(
        AccessRevoker.revoke_access,
        RevokeRequest(workflow_id=run.workflow_id, system=sys.system, users=sys.users,
                      mode=sys.mode),
        start_to_close_timeout=timedelta(minutes=5),
        heartbeat_timeout=timedelta(seconds=10),
        retry_policy=RETRY_FOREVER,
        summary=f"{sys.mode} {len(sys.users)} account(s) on {sys.system}",
    )


async def access_revocation(run: Run) -> None:
    s, systems = run.s, run.client.systems
    run.enter(Stage.ACCESS_REVOCATION)
    run.vis.publish()
    if not systems:
        run.mark(StepKey.ACCESS_REVOCATION, "skipped",
                 "no systems listed in the client file: nothing to revoke")
        return
    results = await together(*[
        until_done(run, f"access-{sys.system}", StepKey.ACCESS_REVOCATION,
                   functools.partial(_revoke, run, sys))
        for sys in systems])
    failures: list[str] = []
    for sys, res in zip(systems, results, strict=True):
        if res is None:
            failures.append(f"{sys.system}: skipped by ops, accounts NOT revoked")
        else:
            s.status.revocations.append(res)
    accounts = sum(len(r.accounts) for r in s.status.revocations)
    await email(run, "access-revoked", template="access_revoked", step=StepKey.ACCESS_REVOCATION,
                to=[run.client.contacts.primary.email],
                extra={"revocations": [r.model_dump(mode="json") for r in s.status.revocations],
                       "failures": failures})
    detail = f"{accounts} account(s) on {len(s.status.revocations)} system(s) revoked"
    run.mark(StepKey.ACCESS_REVOCATION, "done", "; ".join([detail, *failures]))
