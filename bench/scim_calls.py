"""SCIM path: what scim2-client costs per revoked account, against a plain baseline of the
same three requests made with bare httpx2 (what the hand-written client did before it):
a ``userName`` filter, a ``PATCH active=false``, a read back.

Both run in this process against one local scim2-server, alternating, ``--reps`` times on
fresh accounts; the medians of this process's CPU per account (the worker's share: the
server's CPU is not counted) and of the wall time are reported, with their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
from temporalio.testing import ActivityEnvironment

from devtools.procs import free_port
from devtools.scim import ScimServer
from offboarding.activities.access import ScimClient
from offboarding.config import ScimSystem

TOKEN = "bench-token"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def _bare(http: httpx2.AsyncClient, user: str) -> None:
    found = (await http.get("Users", params={"filter": f'userName eq "{user}"'})).json()
    scim_id = found["Resources"][0]["id"]
    (await http.patch(f"Users/{scim_id}", json={"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "active", "value": False}]})).raise_for_status()
    assert (await http.get(f"Users/{scim_id}")).json()["active"] is False


async def _ours(scim: ScimClient, user: str) -> None:
    found = await scim.find(user)
    assert found is not None and found.id is not None
    await scim.deactivate(found)
    after = await scim.get(found.id)
    assert after is not None and after.active is False


async def _timed(one: Callable[[str], Awaitable[None]], users: list[str]
                 ) -> tuple[float, float]:
    """(CPU ms, wall ms) per account."""
    cpu, wall = time.process_time(), time.perf_counter()
    for user in users:
        await one(user)
    n = len(users)
    return (1000 * (time.process_time() - cpu) / n, 1000 * (time.perf_counter() - wall) / n)


async def measure(accounts: int, reps: int) -> dict[str, float]:
    server = ScimServer(free_port(), ["crm"], TOKEN)
    try:
        base_url = server.base_url("crm")
        ours = ScimClient("crm", ScimSystem(base_url=base_url, token=TOKEN))
        http = httpx2.AsyncClient(base_url=base_url + "/",
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        samples: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}

        async def run() -> None:
            await ours.find("warm-up")  # discovery, read once per worker, left out
            for rep in range(reps):
                for side in ("bare", "ours"):
                    users = [f"{side}-{rep}-{i}" for i in range(accounts)]
                    for user in users:
                        server.add_user("crm", user)
                    one: Callable[[str], Awaitable[None]] = (
                        (lambda u: _bare(http, u)) if side == "bare"
                        else (lambda u: _ours(ours, u)))
                    samples[side].append(await _timed(one, users))

        await ActivityEnvironment().run(run)
        await http.aclose()
    finally:
        server.close()
    result: dict[str, Any] = {}
    for side, values in samples.items():
        result[f"{side}_cpu_ms"] = statistics.median(v[0] for v in values)
        result[f"{side}_wall_ms"] = statistics.median(v[1] for v in values)
    result["cpu_ratio"] = result["ours_cpu_ms"] / result["bare_cpu_ms"]
    result["wall_ratio"] = result["ours_wall_ms"] / result["bare_wall_ms"]
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accounts", type=int, default=300)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    r = asyncio.run(measure(args.accounts, args.reps))
    print(f"bare httpx2 (filter, PATCH, read back): {r['bare_cpu_ms']:.2f} ms CPU, "
          f"{r['bare_wall_ms']:.2f} ms wall per account")
    print(f"scim2-client (find, deactivate, get):   {r['ours_cpu_ms']:.2f} ms CPU, "
          f"{r['ours_wall_ms']:.2f} ms wall per account")
    print(f"ratio: CPU {r['cpu_ratio']:.2f}, wall {r['wall_ratio']:.2f}")


if __name__ == "__main__":
    main()
