"""The workflow tier's fixture: the real workflow with stub activities (stubs.py) on the
time-skipping server (``ts_env``, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflow.stubs import StubWorld, stub_world


@pytest.fixture
async def world(ts_env: WorkflowEnvironment) -> AsyncIterator[StubWorld]:
    async with stub_world(ts_env) as w:
        yield w
