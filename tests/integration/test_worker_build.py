"""The worker as settings build it, against the dev server."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from offboarding.config import Settings
from offboarding.worker import build_worker


async def test_a_task_waits_for_the_worker_holding_its_offboarding_as_long_as_set(
        dev_env: WorkflowEnvironment, settings: Settings) -> None:
    """The sticky queue's timeout: how long a task waits for the worker's own queue before
    the server gives it to any worker; the SDK's 10 s unless a deployment sets it."""
    built = build_worker(dev_env.client, settings)
    assert built.config()["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=10)
    quick = settings.model_copy(update={"sticky_queue_timeout_seconds": 1.5,
                                        "task_queue": f"{settings.task_queue}-quick"})
    assert build_worker(dev_env.client, quick).config()[
        "sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=1.5)
