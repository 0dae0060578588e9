"""A real SCIM 2.0 server (``scim2-server``) with one tenant per system, for ``make run``,
the tests and the benchmark, and the dev tools' client for it: seeding and reading
accounts, which the product never does (its own client, ``activities/access.py``, only
deactivates or deletes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from devtools.procs import stop, wait_for_port

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class ScimClient:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token

    def _http(self) -> httpx.Client:
        headers = {"Content-Type": "application/scim+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.Client(base_url=self.base_url + "/", headers=headers)

    def add_user(self, user_name: str, active: bool = True,
                 extra: dict[str, Any] | None = None) -> str:
        """``extra``: extension attributes, by schema URN."""
        with self._http() as http:
            resp = http.post("Users", json={
                "schemas": [USER_SCHEMA, *(extra or {})], "userName": user_name,
                "active": active, **(extra or {})})
            resp.raise_for_status()
            return str(resp.json()["id"])

    def users(self) -> dict[str, dict[str, Any]]:
        """Every account, by userName, page by page (a server may cap a page's size)."""
        found: dict[str, dict[str, Any]] = {}
        with self._http() as http:
            while True:
                resp = http.get("Users", params={"startIndex": len(found) + 1, "count": 1000})
                resp.raise_for_status()
                page = resp.json()
                found.update({u["userName"]: u for u in page.get("Resources", [])})
                if not page.get("Resources") or len(found) >= page["totalResults"]:
                    return found

    def activate(self, user_name: str) -> None:
        """The account exists and is active (created if missing)."""
        found = self.users().get(user_name)
        if found is None:
            self.add_user(user_name)
            return
        with self._http() as http:
            http.patch(f"Users/{found['id']}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": True}],
            }).raise_for_status()


class ScimServer:
    def __init__(self, port: int, systems: list[str], token: str,
                 log: Path | None = None, config: Path | None = None,
                 schemas: Path | None = None, resource_types: Path | None = None) -> None:
        """``config``: a ServiceProviderConfig file, for a server that announces (and
        keeps to) fewer features than scim2-server's default of nearly all; ``schemas``
        and ``resource_types``, for one whose resources carry extensions of its own."""
        self.port, self.systems, self.token = port, systems, token
        self.log = log
        """Its access log: one line per request it answered."""
        # scim2-server's command, with connections kept open as in production
        keepalive = Path(__file__).with_name("scim_keepalive.py")
        args = [sys.executable, str(keepalive), "--port", str(port), "--bearer-token", token]
        for flag, path in (("--service-provider-config", config), ("--schema", schemas),
                           ("--resource-type", resource_types)):
            if path is not None:
                args += [flag, str(path)]
        for s in systems:
            args += ["--tenant", s]
        out = log.open("ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_for_port(port, self.proc)

    def base_url(self, system: str) -> str:
        return f"http://127.0.0.1:{self.port}/{system}/v2"

    def settings_json(self) -> dict[str, Any]:
        return {s: {"base_url": self.base_url(s), "token": self.token} for s in self.systems}

    def client(self, system: str) -> ScimClient:
        return ScimClient(self.base_url(system), self.token)

    def add_user(self, system: str, user_name: str, active: bool = True,
                 extra: dict[str, Any] | None = None) -> str:
        return self.client(system).add_user(user_name, active, extra)

    def discovery(self, system: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The schemas and resource types a system publishes, without their ``meta``, in
        the form the server's ``--schema`` and ``--resource-type`` files take."""
        with self.client(system)._http() as http:
            found = []
            for endpoint in ("Schemas", "ResourceTypes"):
                resp = http.get(endpoint)
                resp.raise_for_status()
                found.append([{k: v for k, v in item.items() if k != "meta"}
                              for item in resp.json()["Resources"]])
            return found[0], found[1]

    def users(self, system: str) -> dict[str, dict[str, Any]]:
        """Every account on a system, by userName."""
        return self.client(system).users()

    def close(self) -> None:
        stop(self.proc)
