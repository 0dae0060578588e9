"""One ``temporal-server`` process of devtools/cluster.py, the Web UI server, and what
starting processes for a cluster needs: ports free on every host address, process groups,
logs."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from devtools.procs import wait_for_port

SMALLINT_PORTS = 32768
"""The server's ports stay below this: the PostgreSQL schema's cluster_membership table
keeps a host's port as a smallint (a port from the kernel's ephemeral range, 32768 and up,
stops the host: 'value "34349" is out of range for type smallint')."""
PORT_VARS = [f"{svc}_{kind}_PORT" for svc in ("FRONTEND", "HISTORY", "MATCHING", "WORKER")
             for kind in ("GRPC", "MEMBERSHIP")] + ["FRONTEND_HTTP_PORT"]
"""The variables of the server's embedded config template that name a port: the same
numbers on every host (each host binds its own address)."""


def free_ports(n: int, ips: list[str], below: int = 65536) -> list[int]:
    """``n`` distinct ports free on every one of ``ips``, each below ``below``."""
    ports: list[int] = []
    rng = random.Random()
    with ExitStack() as held:
        while len(ports) < n:
            port = rng.randrange(10000, below)
            if port in ports:
                continue
            try:
                for ip in ips:
                    sock = held.enter_context(socket.socket())
                    sock.bind((ip, port))
            except OSError:
                continue
            ports.append(port)
    return ports


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without any TEMPORAL_ or OFFBOARDING_ variable of our own (a
    profile, an API key or an address must not leak into the cluster's tools)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEMPORAL_", "OFFBOARDING_"))}
    return {**env, **extra}


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM to the process group, then SIGKILL: nothing it started outlives it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


@dataclass
class Host:
    """One ``temporal-server`` process: a host of the cluster."""

    name: str
    ip: str
    services: list[str]
    env: dict[str, str]
    binary: str
    log: Path
    frontend_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.frontend_port}"

    def start(self) -> None:
        args = [self.binary, "--allow-no-auth", "start"]
        for svc in self.services:
            args += ["--service", svc]
        with self.log.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(args)}\n".encode())
            self.proc = subprocess.Popen(args, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         cwd=self.log.parent)

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a host that dies: no shard is handed over in order."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@dataclass
class UiServer:
    """The Web UI server as the temporalio/ui image runs it: its ``docker.yaml``, filled in
    from the environment, read from ``root``/config after a ``base.yaml`` of
    ``host: 127.0.0.1`` (docker.yaml does not set the listen address: loopback only)."""

    binary: str
    docker_yaml: str
    root: Path
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, temporal_address: str, namespace: str, codec_endpoint: str | None,
              cors_origins: str | None) -> None:
        config = self.root / "config"
        config.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.docker_yaml, config / "docker.yaml")
        (config / "base.yaml").write_text("host: 127.0.0.1\n")
        env = clean_env(TEMPORAL_ADDRESS=temporal_address, TEMPORAL_UI_PORT=str(self.port),
                        TEMPORAL_DEFAULT_NAMESPACE=namespace,
                        TEMPORAL_NOTIFY_ON_NEW_VERSION="false",
                        TEMPORAL_CORS_ORIGINS=cors_origins or self.url,
                        **({"TEMPORAL_CODEC_ENDPOINT": codec_endpoint}
                           if codec_endpoint else {}))
        with self.log.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} UI on {self.url}\n".encode())
            self.proc = subprocess.Popen([self.binary, "--root", str(self.root), "--env",
                                          "docker", "start"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, self.proc, timeout=60)
        except (RuntimeError, TimeoutError) as err:
            self.stop()
            raise RuntimeError(f"the UI server did not start ({err}); see {self.log}:\n"
                               f"{tail(self.log)}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None
