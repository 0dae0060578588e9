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

from offboarding.activities.archive import REPORT
from offboarding.activities.registry import build_activities
from offboarding.activities.stores import safe_key
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


class Floor:
    """The stand-ins. Each answers with what the real activity would return, field for
    field where the workflow keeps it (the status, and so every later payload, carries
    these answers): a payload smaller than the real one would be counted as the
    activities' own work."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @activity.defn(name="send_email")
    async def send_email(self, req: EmailRequest) -> EmailReceipt:
        """Sent, as far as the workflow can tell: no template, no SMTP, no outbox."""
        ops = [self.settings.ops_email] if req.to_ops else []
        return EmailReceipt(key=req.key, message_id=f"<{req.key}.{req.workflow_id}@floor>",
                            to=[*req.to, *ops, *req.cc], subject=f"{req.template}: {req.key}",
                            sent_at=activity.info().started_time)

    @activity.defn(name="revoke_access")
    async def revoke_access(self, req: RevokeRequest) -> SystemRevocation:
        """Every account found and revoked, as on the benchmark's SCIM server."""
        result = "deleted" if req.mode == "delete" else "deactivated"
        return SystemRevocation(system=req.system, mode=req.mode, accounts=[
            AccountResult(user=user, result=result, scim_id=f"floor-{user}")
            for user in req.users])

    @activity.defn(name="export_client_data")
    async def export_client_data(self, req: ExportRequest) -> DataPackage:
        """A manifest hash of its own per export: the humans' driver verifies the package
        by it, and an earlier export's must not verify a later one."""
        manifest = hashlib.sha256(f"{req.records}/{req.attempt}".encode()).hexdigest()
        return DataPackage(attempt=req.attempt, location=f"floor://{req.records}/{req.attempt}",
                           manifest_sha256=manifest, files=len(req.data_sets), bytes=0)

    @activity.defn(name="purge_client_data")
    async def purge_client_data(self, req: PurgeRequest) -> PurgeResult:
        return PurgeResult(deleted=[name for name, _ in req.data_sets])

    @activity.defn(name="archive_offboarding")
    async def archive_offboarding(self, record: OffboardingStatus) -> ArchiveReceipt:
        """The bundle's file list as the real archive names it; nothing is written."""
        key = f"{safe_key(record.client_id)}/{safe_key(record.records_key)}"
        files = ["MANIFEST.json", REPORT, "record.json",
                 *(f"emails/{safe_key(e.key)}.eml" for e in record.emails),
                 *(f"statements/statement-v{s.version}.json" for s in record.statements),
                 *(f"data/manifest-export-{p.attempt}.json" for p in record.data_packages)]
        return ArchiveReceipt(location=f"floor://{key}", manifest_sha256="0" * 64,
                              files=sorted(files), report=f"{key}/{REPORT}")

    def activities(self) -> list[Callable[..., Any]]:
        return [self.send_email, self.revoke_access, self.export_client_data,
                self.purge_client_data, self.archive_offboarding]


NEEDS = {"send_email": ("archive_offboarding", "the farewell attaches the archive's report, "
                        "which the floor's archive does not write")}
"""A real activity that reads what another one writes: without it, the offboardings would
stop there."""


def activities(settings: Settings, real: Sequence[str] = ()) -> list[Callable[..., Any]]:
    """The floor's activities, but the worker's own for the names in ``real``. A real
    archive or purge alone finds less to do than in a real run (no sent mail, no export
    on disk): measured so, it is counted short."""
    own = {name_of(fn): fn for fn in build_activities(settings)} if real else {}
    unknown = set(real) - own.keys()
    if unknown:
        raise SystemExit(f"--real: no activity named {sorted(unknown)}; "
                         f"the worker's are {sorted(own)}")
    for name, (needed, why) in NEEDS.items():
        if name in real and needed not in real:
            raise SystemExit(f"--real: {name} needs {needed} real too: {why}")
    stand_ins = {name_of(fn): fn for fn in Floor(settings).activities()}
    return [own[name] if name in real else fn for name, fn in stand_ins.items()]


def name_of(fn: Callable[..., Any]) -> str:
    """The name an activity is registered under."""
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
