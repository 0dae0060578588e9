"""The floor: the real workflow on the real worker (its runner, logging, tracing, payload
converter), with activities that do no work and answer as the real ones would.

What a floor offboarding costs the worker is the workflow's and the SDK's share: our
workflow code, its payloads, its activations. The real worker's cost above the floor is
the activities' own work (SMTP, SCIM, files), the part a cut to the activities could
remove. So the floor's ratio to the skeleton is the lowest ratio those cuts could reach:
if it is near the target, the activities would have to cost almost nothing.

``python -m bench.floor`` is the floor's worker; bench/run.py runs it as a third phase of
each pair (``--no-floor`` leaves it out). ``--real send_email`` keeps that activity the
worker's own: what one activity costs in place is that phase's CPU less the floor's. The
workflow tests' stubs (tests/workflow/stubs.py) record what they are asked; these only
answer, with what the real activities would return (every account revoked, a manifest
per export), so the offboardings take the same path.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import activity

from offboarding.activities.registry import build_activities
from offboarding.config import Settings, load_settings
from offboarding.models.records import (
    AccountResult,
    ArchiveReceipt,
    DataPackage,
    EmailReceipt,
    EmailRequest,
    ExportRequest,
    PurgeRequest,
    PurgeResult,
    RevokeRequest,
    SystemRevocation,
)
from offboarding.models.status import OffboardingStatus
from offboarding.telemetry import configure_logging
from offboarding.worker import run


@activity.defn(name="send_email")
async def send_email(req: EmailRequest) -> EmailReceipt:
    """Sent, as far as the workflow can tell: no template, no SMTP, no outbox."""
    return EmailReceipt(key=req.key, message_id=f"<{req.key}.{req.workflow_id}@floor>",
                        to=req.to, subject=req.template, sent_at=activity.info().started_time)


@activity.defn(name="revoke_access")
async def revoke_access(req: RevokeRequest) -> SystemRevocation:
    result = "deleted" if req.mode == "delete" else "deactivated"
    return SystemRevocation(system=req.system, mode=req.mode, accounts=[
        AccountResult(user=user, result=result) for user in req.users])


@activity.defn(name="export_client_data")
async def export_client_data(req: ExportRequest) -> DataPackage:
    # A manifest hash of its own per export, as the driver verifies the package by it.
    manifest = hashlib.sha256(f"{req.records}/{req.attempt}".encode()).hexdigest()
    return DataPackage(attempt=req.attempt, location=f"floor://{req.records}/{req.attempt}",
                       manifest_sha256=manifest, files=len(req.data_sets), bytes=0)


@activity.defn(name="purge_client_data")
async def purge_client_data(req: PurgeRequest) -> PurgeResult:
    return PurgeResult(deleted=[name for name, _ in req.data_sets])


@activity.defn(name="archive_offboarding")
async def archive_offboarding(record: OffboardingStatus) -> ArchiveReceipt:
    return ArchiveReceipt(location="floor://archive", manifest_sha256="0" * 64, files=[],
                          report="closure-report.md")


FLOOR: Sequence[Callable[..., Any]] = (send_email, revoke_access, export_client_data,
                                       purge_client_data, archive_offboarding)


def activities(settings: Settings, real: Sequence[str] = ()) -> list[Callable[..., Any]]:
    """The floor's activities, but the worker's own for the names in ``real``: what one
    activity costs in place is the phase's CPU with it real, less the floor's."""
    own = {_name(fn): fn for fn in build_activities(settings)} if real else {}
    unknown = set(real) - own.keys()
    if unknown:
        raise SystemExit(f"--real: no activity named {sorted(unknown)}; "
                         f"the worker's are {sorted(own)}")
    return [own[_name(fn)] if _name(fn) in real else fn for fn in FLOOR]


def _name(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.from_callable(fn)
    assert defn is not None and defn.name is not None
    return defn.name


def main() -> int:
    """The worker as ``python worker.py`` runs it, the activities swapped for the floor's."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--real", default="", help="comma-separated activities to keep real")
    args = p.parse_args()
    settings = load_settings()
    configure_logging(settings.log_format)
    keep = [name for name in args.real.split(",") if name]
    asyncio.run(run(settings, None, graceful_seconds=5, activities=activities(settings, keep)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
