"""Revoking a client's accounts on one system over SCIM 2.0 (RFC 7644).

An account already gone counts as revoked. After each change the account is read back,
so the step only counts as done when the system itself says the account is inactive or gone.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from offboarding.config import ScimSystem, Settings
from offboarding.models.records import AccountResult, RevokeRequest, SystemRevocation
from offboarding.tracing import span

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class ScimError(Exception):
    pass


class ScimClient:
    def __init__(self, name: str, system: ScimSystem) -> None:
        headers = {"Accept": SCIM_JSON, "Content-Type": SCIM_JSON}
        if system.token:
            headers["Authorization"] = f"Bearer {system.token.get_secret_value()}"
        self.name = name
        self.http = httpx.AsyncClient(
            base_url=str(system.base_url).rstrip("/") + "/",
            headers=headers,
            timeout=system.timeout_seconds,
        )

    def _raise_for(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code in (401, 403):
            # Credentials are ops' to fix; retrying by itself will not help.
            raise ApplicationError(
                f"{self.name}: {what} was refused ({resp.status_code}); check the SCIM token",
                type="ScimAccessDenied", non_retryable=True,
            )
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ApplicationError(
                f"{self.name}: {what} failed with {resp.status_code}; will retry",
                type="ScimUnavailable",
            )
        if resp.status_code >= 400:
            raise ApplicationError(
                f"{self.name}: {what} failed with {resp.status_code}: {resp.text[:200]}",
                type="ScimRejected", non_retryable=True,
            )

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with span(f"scim {method} {path.split('/')[0]}", **{
                "scim.system": self.name, "http.request.method": method}):
            return await self.http.request(method, path, **kwargs)

    async def find(self, user: str) -> dict[str, Any] | None:
        """By userName first, then by SCIM id."""
        escaped = user.replace("\\", "\\\\").replace('"', '\\"')
        resp = await self._call("GET", "Users", params={"filter": f'userName eq "{escaped}"'})
        self._raise_for(resp, f"looking up {user}")
        found: list[dict[str, Any]] = resp.json().get("Resources", [])
        if found:
            return found[0]
        return await self.get(user)

    async def get(self, scim_id: str) -> dict[str, Any] | None:
        resp = await self._call("GET", f"Users/{scim_id}")
        if resp.status_code == 404:
            return None
        self._raise_for(resp, f"reading {scim_id}")
        result: dict[str, Any] = resp.json()
        return result

    async def deactivate(self, scim_id: str) -> bool:
        body = {"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}
        resp = await self._call("PATCH", f"Users/{scim_id}", json=body)
        if resp.status_code == 404:
            return False
        self._raise_for(resp, f"deactivating {scim_id}")
        return True

    async def delete(self, scim_id: str) -> bool:
        resp = await self._call("DELETE", f"Users/{scim_id}")
        if resp.status_code == 404:
            return False
        self._raise_for(resp, f"deleting {scim_id}")
        return True


class AccessRevoker:
    """Keeps one SCIM client per system for the worker's life: a client per activity
    built a fresh TLS context and connection pool every time, the single largest cost in
    the worker's profile (bench/profile-before.md). Like the SMTP pool, the clients live
    as long as the worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, ScimClient] = {}

    def _client(self, name: str, system: ScimSystem) -> ScimClient:
        if name not in self._clients:
            self._clients[name] = ScimClient(name, system)
        return self._clients[name]

    @activity.defn(name="revoke_access")
    async def revoke_access(self, req: RevokeRequest) -> SystemRevocation:
        system = self.settings.scim_systems.get(req.system)
        if system is None:
            known = ", ".join(sorted(self.settings.scim_systems)) or "none"
            raise ApplicationError(
                f"system {req.system!r} is not configured (OFFBOARDING_SCIM_SYSTEMS has: {known})",
                type="ScimNotConfigured", non_retryable=True,
            )
        results: list[AccountResult] = []
        scim = self._client(req.system, system)
        revoked = activity.metric_meter().create_counter(
            "offboarding_accounts_revoked", "Client accounts deactivated, deleted or "
            "found already gone")
        try:
            for n, user in enumerate(req.users, 1):
                activity.heartbeat(f"{n}/{len(req.users)}")
                result = await self._revoke_one(scim, user, req.mode)
                revoked.add(1, {"system": req.system, "result": result.result})
                results.append(result)
        except httpx.TransportError as err:
            raise ApplicationError(
                f"{req.system}: could not reach {system.base_url}: {type(err).__name__}",
                type="ScimUnavailable",
            ) from None
        return SystemRevocation(system=req.system, mode=req.mode, accounts=results)

    async def _revoke_one(self, scim: ScimClient, user: str, mode: str) -> AccountResult:
        found = await scim.find(user)
        if found is None:
            return AccountResult(user=user, result="already-gone")
        scim_id = str(found["id"])
        if mode == "delete":
            if not await scim.delete(scim_id):
                return AccountResult(user=user, result="already-gone", scim_id=scim_id)
            if await scim.get(scim_id) is not None:
                raise ApplicationError(f"{scim.name}: {user} still exists after DELETE",
                                       type="ScimNotRevoked")
            return AccountResult(user=user, result="deleted", scim_id=scim_id)
        if not await scim.deactivate(scim_id):
            return AccountResult(user=user, result="already-gone", scim_id=scim_id)
        after = await scim.get(scim_id)
        if after is not None and after.get("active") is not False:
            raise ApplicationError(f"{scim.name}: {user} is still active after PATCH",
                                   type="ScimNotRevoked")
        return AccountResult(user=user, result="deactivated", scim_id=scim_id)
