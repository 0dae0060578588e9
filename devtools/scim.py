"""A real SCIM 2.0 server (``scim2-server``) with one tenant per system, for ``make run``
and the tests, and a way to seed it with a client's accounts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from devtools.procs import stop, wait_for_port

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


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

    def _http(self, system: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url(system) + "/",
                            headers={"Authorization": f"Bearer {self.token}",
                                     "Content-Type": "application/scim+json"})

    def add_user(self, system: str, user_name: str, active: bool = True) -> str:
        with self._http(system) as http:
            resp = http.post("Users", json={"schemas": [USER_SCHEMA], "userName": user_name,
                                            "active": active})
            resp.raise_for_status()
            return str(resp.json()["id"])

    def users(self, system: str) -> dict[str, dict[str, Any]]:
        """Every account on a system, by userName."""
        with self._http(system) as http:
            resp = http.get("Users", params={"count": 1000})
            resp.raise_for_status()
            return {u["userName"]: u for u in resp.json().get("Resources", [])}

    def close(self) -> None:
        stop(self.proc)
