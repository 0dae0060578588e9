"""The cluster tier: a real Temporal cluster (devtools/cluster.py: PostgreSQL, two server
hosts, the schema and namespace as compose makes them), started once for the session. Part
of ``make test``, after every other tier (tests/conftest.py orders it last);
``make test-cluster`` runs it alone. The first run builds the server once (~7 minutes on 2
cores, scripts/ensure-temporal-server.sh); a machine that cannot build it fails here, it
does not skip."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devtools.cluster import Cluster


@pytest.fixture(scope="session")
async def cluster() -> AsyncIterator[Cluster]:
    async with Cluster() as started:
        yield started
