"""The cluster tier: a real Temporal cluster (devtools/cluster.py: PostgreSQL, two server
hosts, the schema and namespace as compose makes them). Not collected by a plain
``pytest`` (so not by ``make test`` yet): only when tests/cluster is named on the command
line (``make test-cluster``) or OFFBOARDING_CLUSTER_TESTS=1. The first run builds the
server once (~7 minutes on 2 cores, scripts/ensure-temporal-server.sh)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.cluster import Cluster

HERE = Path(__file__).resolve().parent


def _asked(config: pytest.Config) -> bool:
    if os.environ.get("OFFBOARDING_CLUSTER_TESTS") == "1":
        return True
    start = config.invocation_params.dir
    for arg in config.args:
        path = (start / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.name.startswith("test_") and not _asked(config):
        return True
    return None


@pytest.fixture(scope="session")
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as started:
        yield started
