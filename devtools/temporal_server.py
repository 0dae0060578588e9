"""How we run Temporal's server, wherever we start one (``make run``, the tests, the
benchmark; docker-compose.yml sets the same in deploy/dynamicconfig.yaml).

Eager activity execution is on: when a workflow task schedules an activity that the
same worker can run, the server hands it over in its answer to that task instead of
queueing it for a poll. The worker asks for it by default; the server's default is off.
The benchmark measured what it buys under load (README, Performance): approval -> next
activity p99 from 4-7 s to under 0.2 s, and a third less server CPU per offboarding.
"""

from __future__ import annotations

from offboarding.models import search_attributes as sa

DYNAMIC_CONFIG = {"system.enableActivityEagerExecution": "true"}


def dynamic_config_flags() -> list[str]:
    return [arg for key, value in DYNAMIC_CONFIG.items()
            for arg in ("--dynamic-config-value", f"{key}={value}")]


def dev_server_flags() -> list[str]:
    """Flags for ``temporal server start-dev``: our search attributes and the config."""
    return [*sa.dev_server_flags(), *dynamic_config_flags()]
