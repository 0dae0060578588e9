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

    def add_user(self, user_name: str, active: bool = True) -> str:
        with self._http() as http:
            resp = http.post("Users", json={"schemas": [USER_SCHEMA], "userName": user_name,
                                            "active": active})
            resp.raise_for_status()
            return str(resp.json()["id"])

    def users(self) -> dict[str, dict[str, Any]]:
        """Every account, by userName."""
        with self._http() as http:
            resp = http.get("Users", params={"count": 1000})
            resp.raise_for_status()
            return {u["userName"]: u for u in resp.json().get("Resources", [])}

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
                 log: Path | None = None) -> None:
        self.port, self.systems, self.token = port, systems, token
        exe = Path(sys.executable).with_name("scim2-server")
        args = [str(exe), "--port", str(port), "--bearer-token", token]
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

    def add_user(self, system: str, user_name: str, active: bool = True) -> str:
        return self.client(system).add_user(user_name, active)

    def users(self, system: str) -> dict[str, dict[str, Any]]:
        """Every account on a system, by userName."""
        return self.client(system).users()

    def close(self) -> None:
        stop(self.proc)
