"""The offboarding worker: runs the workflow and its activities on one task queue.

Connection: Temporal's standard environment configuration (see ``temporal.py``).
Application settings: ``OFFBOARDING_*`` variables (see ``config.py``).
SIGINT or SIGTERM stops it gracefully: no new work is taken, running activities get
``--graceful-seconds`` to finish, and whatever does not finish is retried elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerDeploymentConfig,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from offboarding.activities.registry import build_activities
from offboarding.activities.smtp_pool import check_ca_file
from offboarding.config import Settings, SettingsError, load_settings
from offboarding.security.codec import CodecKeyError, ForgivingCodec
from offboarding.telemetry import ApprovalGauges, configure_logging, prometheus_runtime
from offboarding.temporal import connect
from offboarding.tracing import setup as setup_tracing
from offboarding.workflows.offboarding import ClientOffboarding

log = logging.getLogger("offboarding.worker")


def build_worker(client: Client, settings: Settings, *, graceful_seconds: float = 30,
                 activities: Sequence[Callable[..., Any]] | None = None) -> Worker:
    """``activities``: the worker's own (``build_activities``) unless given; the benchmark's
    floor (bench/floor.py) passes stand-ins to measure the workflow without their work."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[ClientOffboarding],
        activities=build_activities(settings) if activities is None else activities,
        graceful_shutdown_timeout=timedelta(seconds=graceful_seconds),
        deployment_config=deployment(settings),
        workflow_runner=workflow_runner(settings.workflow_sandbox),
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.sticky_queue_timeout_seconds),
    )


PASSED_THROUGH = ("opentelemetry", "cryptography", "_cffi_backend", "markupsafe", "obstore",
                  "google._upb")
"""Modules the sandbox shares with the worker instead of importing again per run.

OpenTelemetry's context is shared on purpose (the tracing plugin's workflow half and
``workflows/causes.py`` use it). The others hold native extensions that workflow code can
reach: a Rust (pyo3) or C extension cannot be initialised twice in one process, so a second
import from inside the sandbox panics and aborts the whole worker. ``cryptography`` is
reached when a forged link's signature fails: the Rust core imports ``InvalidSignature``
while the sandbox's importer is in force, and every worker that picked the update up
died. tests/unit/test_sandbox.py fails when a new native extension
becomes reachable without being listed here."""


def workflow_runner(sandboxed: bool = True) -> WorkflowRunner:
    """Temporal's sandbox (the tests' default: every in-process workflow test and replay
    runs in it), or none (the worker's default, ``OFFBOARDING_WORKFLOW_SANDBOX``).

    The sandbox polices only the module it reloads per run, ``workflows/offboarding.py``:
    everything it calls is passed through, so ``tests/unit/test_layers.py`` polices that
    code instead (what it imports, who it asks the time), and the workflow module with it.
    What the sandbox still cost, per run and per activation (re-importing the module,
    compiling its wrapper code for every activation and every command's payload context),
    was about two thirds of a replayed offboarding's CPU: 124 ms against 46 ms unsandboxed
    (bench/README.md, issue 24). Without it, a native extension can no longer be imported
    twice and abort the worker (``PASSED_THROUGH``)."""
    return sandbox() if sandboxed else UnsandboxedWorkflowRunner()


def sandbox() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH))


def deployment(settings: Settings) -> WorkerDeploymentConfig | None:
    """With worker versioning, this worker is one version of the deployment.

    AUTO_UPGRADE: an offboarding moves to the current version at its next workflow task.
    Offboardings sleep for weeks and months; pinning each to the version it started on
    would mean keeping every old worker running until its last offboarding ends. So a
    change that alters commands goes behind ``workflow.patched()`` and is checked with
    ``replay-check`` before the new version is made current (README: Upgrading)."""
    if not settings.worker_versioning:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.deployment_name, settings.worker_build_id()),
        use_worker_versioning=True, default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE)


async def run(settings: Settings, address: str | None, graceful_seconds: float,
              activities: Sequence[Callable[..., Any]] | None = None) -> None:
    runtime = prometheus_runtime(settings.metrics_address) if settings.metrics_address else None
    codec = settings.codec()
    forgiving = ForgivingCodec(codec) if codec else None
    setup_tracing("offboarding-worker")
    client = await (connect(address, forgiving, runtime=runtime) if runtime
                    else connect(address, forgiving))
    if codec is None:
        log.warning("payload encryption is off: set OFFBOARDING_CODEC_KEY_FILE or "
                    "OFFBOARDING_CODEC_KEYS to keep client data out of Temporal's storage")
    worker = build_worker(client, settings, graceful_seconds=graceful_seconds,
                          activities=activities)
    gauges = None
    if runtime is not None:
        gauges = asyncio.create_task(ApprovalGauges(client, runtime.metric_meter,
                                                     settings.task_queue).run())
        log.info("metrics on http://%s/metrics", settings.metrics_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %r on %s (namespace %s)", settings.task_queue,
             client.service_client.config.target_host, client.namespace)
    async with worker:
        await stop.wait()
        log.info("stopping: letting running activities finish (up to %ss)", graceful_seconds)
        if gauges is not None:
            gauges.cancel()
    log.info("worker stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", help="Temporal address; overrides TEMPORAL_ADDRESS")
    parser.add_argument("--graceful-seconds", type=float, default=30)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        settings.codec()  # a bad key stops the worker here, not on its first payload
        check_ca_file(settings)  # and so does an SMTP CA file it cannot use
    except (SettingsError, CodecKeyError) as err:
        print(f"worker: {err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    asyncio.run(run(settings, args.address, args.graceful_seconds))
    return 0



def cli_main() -> None:
    """The ``offboarding-worker`` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli_main()
