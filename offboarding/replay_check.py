"""``offboarding replay-check`` (also ``offboarding-replay-check``): run before every
deploy. It fetches the histories of the running offboardings and of those closed
recently from the live namespace, decrypted with the operator's keys as the worker would,
and replays each against the workflow code on disk. A change that would break an
offboarding in flight (a command added, removed or reordered without
``workflow.patched``) fails the replay: the command exits 1 and names the first history
that breaks, before any worker runs the new code.

Connection: Temporal's standard environment (as the worker), ``--address`` to override;
keys: the worker's OFFBOARDING_CODEC_* settings."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from temporalio.client import Client
from temporalio.worker import Replayer

from offboarding.client import WORKFLOW_TYPE
from offboarding.config import SettingsError, load_settings
from offboarding.security.codec import CodecKeyError, ForgivingCodec
from offboarding.temporal import connect
from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding


@dataclass(frozen=True)
class Checked:
    workflow_id: str
    run_id: str
    status: str
    failure: str | None
    """Why the replay failed (None: it replayed)."""


async def replay_check(client: Client, *, workflows: Sequence[type] = (ClientOffboarding,),
                       limit: int = 200, closed_days: float = 14,
                       where: str | None = None) -> list[Checked]:
    """Every running offboarding and those closed in the last ``closed_days``, newest
    first, at most ``limit``, each replayed against ``workflows``; ``where`` narrows them
    with a visibility query clause."""
    since = (datetime.now(UTC) - timedelta(days=closed_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (f'WorkflowType = "{WORKFLOW_TYPE}" AND '
             f'(ExecutionStatus = "Running" OR CloseTime > "{since}")'
             + (f" AND ({where})" if where else ""))
    replayer = Replayer(workflows=list(workflows), data_converter=client.data_converter,
                        workflow_runner=workflow_runner())
    checked = []
    async for wf in client.list_workflows(query, limit=limit):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        checked.append(Checked(wf.id, wf.run_id, wf.status.name if wf.status else "?",
                               None if failure is None else _why(failure)))
    return checked


def _why(err: Exception) -> str:
    return " ".join(str(err).split())[:500]


async def run(argv: list[str], client: Client | None = None, out: TextIO = sys.stdout,
              workflows: Sequence[type] = (ClientOffboarding,)) -> int:
    p = argparse.ArgumentParser(prog="offboarding replay-check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", help="Temporal address; overrides TEMPORAL_ADDRESS")
    p.add_argument("--limit", type=int, default=200, help="histories to check at most")
    p.add_argument("--closed-days", type=float, default=14,
                   help="also check offboardings closed this many days ago or later")
    p.add_argument("--where", help="narrow them with a visibility query clause, e.g. "
                                   "'OffboardingStage = \"settlement\"'")
    args = p.parse_args(argv)
    if client is None:
        try:
            codec = load_settings().codec()
        except (SettingsError, CodecKeyError) as err:
            print(f"replay-check: {err}", file=sys.stderr)
            return 2
        client = await connect(args.address, ForgivingCodec(codec) if codec else None)
    checked = await replay_check(client, workflows=workflows, limit=args.limit,
                                 closed_days=args.closed_days, where=args.where)
    broken = [c for c in checked if c.failure]
    for c in checked:
        out.write(f"{'BROKEN' if c.failure else 'ok    '} {c.workflow_id} ({c.status})"
                  f"{': ' + c.failure if c.failure else ''}\n")
    if broken:
        first = broken[0]
        out.write(f"\n{len(broken)} of {len(checked)} histories do not replay against this "
                  f"code; the first: {first.workflow_id} (run {first.run_id}). Do not deploy: "
                  "guard the change with workflow.patched() (README: Changing the workflow)\n")
        return 1
    out.write(f"{len(checked)} histories replay against this code\n")
    return 0


def main() -> None:
    sys.exit(asyncio.run(run(sys.argv[1:])))


if __name__ == "__main__":
    main()
