"""Revoking a client's accounts on one system over SCIM 2.0 (RFC 7644), through scim2-client.

Systems differ in what they implement, so the client first reads what the system announces
(its ServiceProviderConfig, RFC 7644 §5) and keeps to it: a PATCH of ``active`` where PATCH
is supported, else a PUT of the account as read, with ``active`` false (guarded by its ETag
where the system has them); a ``userName`` filter where filtering is supported, else a walk
through the list of accounts, page by page.

An account already gone counts as revoked. The step only counts as done when the system
itself says the account is inactive or gone: in its answer to the change (a 200 carries the
account after it), or else by reading the account back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx2
from scim2_client import (
    InvalidServiceDescriptionException,
    RequestNetworkException,
    SCIMClientException,
    UnexpectedStatusCodeException,
)
from scim2_client.engines.httpx2 import AsyncSCIMClient
from scim2_models import (
    EnterpriseUser,
    ListResponse,
    NotFoundException,
    PatchOp,
    PatchOperation,
    SCIMException,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    User,
)
from temporalio import activity
from temporalio.exceptions import ApplicationError

from offboarding.activities.blocking import Progress
from offboarding.config import ScimSystem, Settings
from offboarding.models.records import AccountResult, RevokeRequest, SystemRevocation
from offboarding.tracing import span

RETRYABLE = {409, 412, 429}  # a conflict or a lost ETag race is read again; 429 waits
T = TypeVar("T")


def _expect(kind: type[T], answer: object) -> T:
    """scim2-client answers a union (an Error, or a raw dict when checks are off); with its
    checks on, as here, anything but the expected kind means the system broke the protocol."""
    if not isinstance(answer, kind):
        raise SCIMClientException(f"expected a {kind.__name__}, got {type(answer).__name__}")
    return answer


class TracedScim(AsyncSCIMClient):
    """scim2-client over httpx2, with a span around each HTTP call it makes."""

    def __init__(self, name: str, http: httpx2.AsyncClient) -> None:
        # The RFC's User, typed; attributes of the system's own extensions are kept as
        # read, so that a PUT writes them back unchanged instead of refusing the account.
        super().__init__(http, provider=ScimProvider(
            models=[User, EnterpriseUser], policy=ScimPolicy(unknown=ScimPolicy.Unknown.keep)))
        self.name = name

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        endpoint = url.strip("/").split("/")[0]
        with span(f"scim {method} {endpoint}", {
                "scim.system": self.name, "http.request.method": method}):
            return await super().request(method, url, **kwargs)


class ScimClient:
    """One system: what it announces, read once, and the four calls revocation needs."""

    def __init__(self, name: str, system: ScimSystem) -> None:
        headers = {}
        if system.token:
            headers["Authorization"] = f"Bearer {system.token.get_secret_value()}"
        self.name = name
        self.base_url = str(system.base_url).rstrip("/") + "/"
        self.scim = TracedScim(name, httpx2.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=system.timeout_seconds))
        self._config: ServiceProviderConfig | None = None

    @contextmanager
    def _explained(self, what: str) -> Iterator[None]:
        """Turns scim2-client's exceptions into the activity's errors, named for the system
        and the step: credentials and refusals are ops' to fix (non-retryable), an outage
        or a race is retried."""
        try:
            yield
        except RequestNetworkException as err:
            cause = type(err.__cause__).__name__ if err.__cause__ else "network error"
            raise ApplicationError(f"{self.name}: could not reach {self.base_url}: {cause}",
                                   type="ScimUnavailable") from None
        except SCIMException as err:
            raise self._failure(what, err.status, str(err)) from None
        except UnexpectedStatusCodeException as err:  # a failure without a SCIM error body
            status = getattr(err.source, "status_code", 0)  # the response it came with
            raise self._failure(what, int(status), str(err)) from None
        except InvalidServiceDescriptionException as err:
            raise ApplicationError(
                f"{self.name}: its SCIM discovery endpoints do not describe a coherent "
                f"service: {err}", type="ScimRejected", non_retryable=True) from None
        except SCIMClientException as err:
            raise ApplicationError(
                f"{self.name}: {what} got an answer that is not SCIM: {err}",
                type="ScimRejected", non_retryable=True) from None

    def _failure(self, what: str, status: int, detail: str) -> ApplicationError:
        if status in (401, 403):
            return ApplicationError(
                f"{self.name}: {what} was refused ({status}); check the SCIM token",
                type="ScimAccessDenied", non_retryable=True)
        if status in RETRYABLE or status >= 500:
            return ApplicationError(f"{self.name}: {what} failed with {status}; will retry",
                                    type="ScimUnavailable")
        return ApplicationError(f"{self.name}: {what} failed with {status}: {detail[:200]}",
                                type="ScimRejected", non_retryable=True)

    async def _announced(self) -> ServiceProviderConfig:
        """The system's ServiceProviderConfig (RFC 7644 §5), read once per worker."""
        if self._config is None:
            await self.scim.discover()
            config = self.scim.provider.config
            if config is None:
                raise ApplicationError(f"{self.name}: publishes no ServiceProviderConfig",
                                       type="ScimRejected", non_retryable=True)
            self._config = config
        return self._config

    async def find(self, user: str) -> User[Any] | None:
        """By userName first, then by SCIM id."""
        with self._explained(f"looking up {user}"):
            config = await self._announced()
            if config.filter is not None and config.filter.supported:
                escaped = user.replace("\\", "\\\\").replace('"', '\\"')
                page = _expect(ListResponse, await self.scim.query(
                    User, query_parameters=SearchRequest(filter=f'userName eq "{escaped}"')))
                found: list[User[Any]] = page.resources or []
                if found:
                    return found[0]
            else:
                listed = await self._listed(user, config)
                if listed is not None:
                    return listed
        return await self.get(user)

    async def _listed(self, user: str, config: ServiceProviderConfig) -> User[Any] | None:
        """Pages through every account: for systems without filtering. userName is
        case-insensitive in SCIM (RFC 7643 §4.1.1), as a filter would compare it."""
        size = config.filter.max_results if config.filter and config.filter.max_results else 100
        wanted, number = user.casefold(), 0
        seen: set[str] = set()  # ids listed so far
        beat = Progress()
        while True:
            number += 1
            page = _expect(ListResponse, await self.scim.query(
                User, query_parameters=SearchRequest(start_index=len(seen) + 1, count=size)))
            accounts: list[User[Any]] = page.resources or []
            for account in accounts:
                if (account.user_name or "").casefold() == wanted:
                    return account
            new = {a.id or "" for a in accounts} - seen
            if accounts and not new:  # else "not found" would read as "already gone"
                raise ApplicationError(
                    f"{self.name}: looking up {user}: page {number} of the accounts repeats "
                    f"accounts already listed (the system ignores startIndex); cannot tell "
                    f"whether {user} exists", type="ScimRejected", non_retryable=True)
            seen |= new
            beat(f"{self.name}: looked through {len(seen)} of {page.total_results} "
                 f"accounts for {user}")
            if not accounts or len(seen) >= (page.total_results or 0):
                return None

    async def get(self, scim_id: str) -> User[Any] | None:
        with self._explained(f"reading {scim_id}"):
            try:
                return _expect(User, await self.scim.query(User, scim_id))
            except NotFoundException:
                return None

    async def deactivate(self, account: User[Any]) -> User[Any] | bool:
        """The account as the system answered the change (RFC 7644 §3.5.2: a PATCH that
        names attributes is answered 200 with the account), True when it answered without
        one, False when the account went away meanwhile."""
        with self._explained(f"deactivating {account.id}"):
            config = await self._announced()
            try:
                if config.patch is not None and config.patch.supported:
                    # Naming an attribute obliges the system to answer with the account.
                    answer = await self.scim.modify(User, account.id, PatchOp[User[Any]](
                        operations=[PatchOperation(op="replace", path="active", value=False)]),
                        params={"attributes": "active"})
                else:
                    answer = await self.scim.replace(account.model_copy(update={"active": False}))
            except NotFoundException:
                return False
        return answer if isinstance(answer, User) else True

    async def delete(self, account: User[Any]) -> bool:
        """False when the account went away meanwhile."""
        with self._explained(f"deleting {account.id}"):
            try:
                await self.scim.delete(User, account.id)
            except NotFoundException:
                return False
        return True


class AccessRevoker:
    """Keeps one SCIM client per system for the worker's life: a client per activity
    built a fresh TLS context and connection pool every time, the single largest cost in
    the worker's profile (bench/profile-before.md), and discovery is read once. Like the
    SMTP pool, the clients live as long as the worker process."""

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
        beat = Progress()
        for n, user in enumerate(req.users, 1):
            beat(f"{n}/{len(req.users)}")
            result = await self._revoke_one(scim, user, req.mode)
            revoked.add(1, {"system": req.system, "result": result.result})
            results.append(result)
        return SystemRevocation(system=req.system, mode=req.mode, accounts=results)

    async def _revoke_one(self, scim: ScimClient, user: str, mode: str) -> AccountResult:
        found = await scim.find(user)
        if found is None or found.id is None:
            return AccountResult(user=user, result="already-gone")
        scim_id = found.id
        if mode == "delete":
            if not await scim.delete(found):
                return AccountResult(user=user, result="already-gone", scim_id=scim_id)
            if await scim.get(scim_id) is not None:
                raise ApplicationError(f"{scim.name}: {user} still exists after DELETE",
                                       type="ScimNotRevoked")
            return AccountResult(user=user, result="deleted", scim_id=scim_id)
        answered = await scim.deactivate(found)
        if answered is False:
            return AccountResult(user=user, result="already-gone", scim_id=scim_id)
        # The system's own answer to the change says where the account stands, if it is
        # this account's; any other answer (none, another account's, one still active) is
        # checked by reading the account again.
        said = answered if isinstance(answered, User) and answered.id == scim_id else None
        after = said if said is not None and said.active is False else await scim.get(scim_id)
        if after is not None and after.active is not False:
            raise ApplicationError(f"{scim.name}: {user} is still active after the change",
                                   type="ScimNotRevoked")
        return AccountResult(user=user, result="deactivated", scim_id=scim_id)
