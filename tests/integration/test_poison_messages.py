"""Messages that stopped offboardings or killed workers (issue 20, rows 1 and 2), sent as
anyone with namespace access sends them: with the Temporal CLI, to a real worker process.
The generated classes around them are in test_message_fuzz.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from devtools.mailcapture import MailCapture
from devtools.procs import start_logged, stop
from devtools.scim import ScimServer
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import Cancel
from offboarding.worker import workflow_runner
from offboarding.workflows.offboarding import ClientOffboarding
from tests.conftest import ROOT
from tests.helpers import client_file, status_of, wait_until, waiting_for, worker_env

FORGED = "o1.l1.eyJ3IjoieCJ9.AAAA"
"""A link with a known key id and a signature that does not match: verifying it raised
``InvalidSignature`` from cryptography's Rust core, which panicked inside the sandbox."""


def temporal(cli: str, address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli, *args, "--address", address], capture_output=True,
                          text=True, timeout=60)


async def test_a_forged_link_and_signals_with_any_number_of_inputs_stop_nothing(
    dev_env: WorkflowEnvironment, temporal_cli: str, settings: Settings, mail: MailCapture,
    scim: ScimServer, tmp_path: Path,
) -> None:
    address = dev_env.client.service_client.config.target_host
    worker = await asyncio.to_thread(start_logged, [sys.executable, "worker.py"],
                                     tmp_path / "worker.log", "worker polling",
                                     env=worker_env(settings, address), cwd=ROOT)
    try:
        cli = OffboardingClient(dev_env.client, settings.task_queue)
        wid = await cli.start(client_file("termination", scim=scim))
        handle = dev_env.client.get_workflow_handle(wid)
        st = await wait_until(handle, waiting_for("settlement-approval"), what="settlement")
        assert "l1" in (await handle.query(ClientOffboarding.status)).model_dump_json()

        # Row 1: a forged link through an update, as `temporal workflow update` sends it.
        forged = json.dumps({"by": "finance.lead@example.com", "link": FORGED,
                             "statement_hash": st.statements[-1].hash})
        done = temporal(temporal_cli, address, "workflow", "update", "execute",
                        "--workflow-id", wid, "--name", "approve-settlement",
                        "--input", forged)
        assert done.returncode != 0
        assert "signature does not match" in done.stderr + done.stdout
        assert worker.poll() is None, "the worker process survived"

        # Row 2: a signal with no input, and one with two.
        done = temporal(temporal_cli, address, "workflow", "signal", "--workflow-id", wid,
                        "--name", "complete-task")
        assert done.returncode == 0, done.stderr
        done = temporal(temporal_cli, address, "workflow", "signal", "--workflow-id", wid,
                        "--name", "cancel", "--input", '{"by": "ops", "reason": "a"}',
                        "--input", '{"by": "ops", "reason": "b"}')
        assert done.returncode == 0, done.stderr
        st = await wait_until(handle, lambda s: s.ignored_total == 2, what="two ignored")
        assert [(i.action, i.why) for i in st.ignored] == [
            ("complete-task", "expected one JSON object as the signal's input, got 0 inputs"),
            ("cancel", "expected one JSON object as the signal's input, got 2 inputs"),
        ]
        assert st.step("settlement").state == "waiting" and not st.decisions, "no change"
        assert st.outcome is None
        assert worker.poll() is None

        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await handle.result()
        assert (await status_of(handle)).outcome == "cancelled"  # it went on
        history = await handle.fetch_history()
    finally:
        stop(worker, timeout=30)
    replayer = Replayer(workflows=[ClientOffboarding], data_converter=dev_env.client.data_converter,
                        workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
