"""A real Temporal cluster on this machine, without Docker: what docker-compose.yml runs,
started from binaries built once into the cache (scripts/ensure-temporal-server.sh,
ensure-temporal-ui.sh, ensure-temporal-cli.sh). Used by tests/cluster and ``make cluster``.

- PostgreSQL: a private cluster (``initdb`` + ``pg_ctl``) in a temporary directory on a
  free port, password-protected; as root (initdb refuses root) run as the ``postgres``
  user through ``runuser``;
- the schemas of ``temporal`` and ``temporal_visibility``: deploy/temporal/setup-schema.sh,
  the script compose's ``temporal-schema`` service runs, so the two cannot drift;
- ``temporal-server`` as two hosts, configured as the temporalio/server image is, by
  environment variables only (the binary renders its embedded config template from them):
  host A runs frontend, history, matching and worker on 127.0.0.1, host B frontend and
  history on 127.0.0.2, on the same ports (two loopback addresses stand for two hosts);
  ready when ``temporal operator cluster health`` answers SERVING on both frontends;
- the namespace (deploy/temporal/create-namespace.sh, as compose's ``temporal-namespace``)
  and our search attributes (``register_search_attributes``, which waits until the
  frontends' caches know them);
- optionally the Web UI server, pointed at a codec server.

Everything it starts it stops (each process in its own process group); logs stay in
its directory, named in every error. ``python -m devtools.cluster`` runs one until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from temporalio.client import Client

from devtools.postgres import PostgresError, PrivatePostgres
from devtools.server_host import (
    PORT_VARS,
    SMALLINT_PORTS,
    Host,
    UiServer,
    clean_env,
    free_ports,
    stop_group,
    tail,
)
from devtools.stack import temporal_cli
from offboarding.temporal import connect, register_search_attributes

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NUM_HISTORY_SHARDS = 4
"""Fixed when the database is first used and never changeable after: every host of a
cluster must say the same number (docs/cluster.md)."""
DB_USER = "temporal"
HOST_IPS = {"a": "127.0.0.1", "b": "127.0.0.2"}
HOST_SERVICES = {"a": ["frontend", "history", "matching", "worker"], "b": ["frontend", "history"]}
class ClusterError(RuntimeError):
    """A step of the start failed; the message names the logs to read."""


def _ensure(script: str) -> list[str]:
    """The lines an ensure script prints (paths), building what it needs once; its
    progress goes to our stderr."""
    out = subprocess.run([str(ROOT / "scripts" / script)], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return out.strip().splitlines()


@dataclass
class Cluster:
    """``async with Cluster() as cluster:`` a cluster ready for workers at
    ``cluster.address`` (host A's frontend; ``cluster.hosts["b"].address`` is the other),
    namespace ``cluster.namespace`` with our search attributes.

    ``ui``: also start the Web UI server (``ui_port``, free if 0), decoding payloads
    through ``codec_endpoint`` if given; or later, ``start_ui`` (and ``stop_ui``).
    ``keep``: leave the directory (data and logs) after a clean stop; a failed start
    always leaves it."""

    namespace: str = "default"
    ui: bool = False
    ui_port: int = 0
    codec_endpoint: str | None = None
    cors_origins: str | None = None
    log_level: str = "warn"
    keep: bool = False
    base: Path | None = None
    progress: bool = True
    dir: Path = field(init=False)
    hosts: dict[str, Host] = field(init=False, default_factory=dict)
    timings: dict[str, float] = field(init=False, default_factory=dict)
    _procs: list[subprocess.Popen[bytes]] = field(init=False, default_factory=list)
    _ui_server: UiServer | None = field(init=False, default=None)
    _failed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="offboarding-cluster-", dir=self.base))
        self.schema_log = self.dir / "schema.log"
        self.namespace_log = self.dir / "namespace.log"
        self.ui_log = self.dir / "ui-server.log"
        self.password = secrets.token_urlsafe(18)
        self.postgres = PrivatePostgres(self.dir, DB_USER, self.password)
        self.server_ports: dict[str, int] = {}
        self.ui_bin = self.ui_config = ""

    # -- what tests and people use

    @property
    def address(self) -> str:
        return self.hosts["a"].address

    @property
    def ui_url(self) -> str | None:
        return self._ui_server.url if self._ui_server is not None else None

    async def client(self, address: str | None = None) -> Client:
        return await connect(address or self.address, namespace=self.namespace)

    async def __aenter__(self) -> Cluster:
        try:
            await asyncio.to_thread(self._start_processes)
            await self._timed("search attributes", self._register())
            if self.ui:
                await asyncio.to_thread(self._timed_sync, "ui server", lambda: self.start_ui(
                    self.codec_endpoint, self.ui_port, self.cors_origins))
        except BaseException:
            self._failed = True
            await asyncio.to_thread(self.close)
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.close)

    def logs(self) -> list[Path]:
        return sorted(p for p in self.dir.rglob("*.log"))

    def close(self) -> None:
        """Stop everything started, in reverse; the directory goes unless ``keep`` or a
        failure (then its logs are named on stderr)."""
        self.stop_ui()
        for host in reversed(self.hosts.values()):
            host.stop()  # its current process: one restarted by host.start() too
        for proc in reversed(self._procs):
            stop_group(proc)
        self._procs.clear()
        self.postgres.stop()
        if self._failed or self.keep:
            names = "\n  ".join(str(p) for p in self.logs())
            self._say(f"cluster directory kept: {self.dir}\n  {names}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the steps

    def _say(self, line: str) -> None:
        if self.progress:
            print(f"cluster: {line}", file=sys.stderr, flush=True)

    async def _timed(self, what: str, step: Awaitable[None]) -> None:
        start = time.monotonic()
        await step
        self.timings[what] = time.monotonic() - start
        self._say(f"{what}: {self.timings[what]:.1f} s")

    def _timed_sync(self, what: str, step: Callable[[], object]) -> None:
        start = time.monotonic()
        step()
        self.timings[what] = time.monotonic() - start
        self._say(f"{what}: {self.timings[what]:.1f} s")

    def _start_processes(self) -> None:
        self._say(f"directory {self.dir}")
        self._timed_sync("binaries", self._binaries)
        self._timed_sync("postgresql", self._start_postgres)
        self._timed_sync("schema", self._setup_schema)
        self._timed_sync("server hosts healthy", self._start_hosts)
        self._timed_sync("namespace", self._create_namespace)

    def _binaries(self) -> None:
        self.server_bin, self.sql_tool, self.schema_dir = _ensure("ensure-temporal-server.sh")
        self.cli = temporal_cli()
        if self.ui:
            self.ui_bin, self.ui_config = _ensure("ensure-temporal-ui.sh")

    def _start_postgres(self) -> None:
        try:
            self.postgres.start()
        except PostgresError as err:
            raise ClusterError(str(err)) from None
        self._say(f"postgresql on 127.0.0.1:{self.postgres.port}, data in {self.postgres.data}")

    def db_env(self) -> dict[str, str]:
        """The variables the server and the schema script read to reach the database, as
        docker-compose.yml sets them."""
        return {"DB": "postgres12", "POSTGRES_SEEDS": "127.0.0.1",
                "DB_PORT": str(self.postgres.port), "POSTGRES_USER": DB_USER,
                "POSTGRES_PWD": self.password, "SQL_PASSWORD": self.password}

    def _run_logged(self, args: list[str], log: Path, env: dict[str, str], what: str) -> None:
        with log.open("ab") as out:
            done = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise ClusterError(f"{what} failed (exit {done.returncode}); see {log}:\n"
                               f"{tail(log)}")

    def _setup_schema(self) -> None:
        env = clean_env(**self.db_env(), TEMPORAL_SCHEMA_DIR=self.schema_dir,
                         PATH=f"{Path(self.sql_tool).parent}{os.pathsep}{os.environ['PATH']}")
        self._run_logged(["sh", str(DEPLOY / "temporal" / "setup-schema.sh")], self.schema_log,
                         env, "deploy/temporal/setup-schema.sh")

    # The server

    def host_env(self, ip: str) -> dict[str, str]:
        """A host's whole configuration, as the temporalio/server image takes it."""
        return clean_env(
            **self.db_env(), NUM_HISTORY_SHARDS=str(NUM_HISTORY_SHARDS), BIND_ON_IP=ip,
            LOG_LEVEL=self.log_level,
            DYNAMIC_CONFIG_FILE_PATH=str(DEPLOY / "dynamicconfig.yaml"),
            **{var: str(port) for var, port in self.server_ports.items()})

    def _start_hosts(self) -> None:
        ports = free_ports(len(PORT_VARS), list(HOST_IPS.values()), below=SMALLINT_PORTS)
        self.server_ports = dict(zip(PORT_VARS, ports, strict=True))
        for name, ip in HOST_IPS.items():
            host = Host(name, ip, HOST_SERVICES[name], self.host_env(ip), self.server_bin,
                        self.dir / f"server-{name}.log", self.server_ports["FRONTEND_GRPC_PORT"])
            self.hosts[name] = host
            # One after the other, as hosts join a cluster: B takes its shards from A.
            host.start()
            assert host.proc is not None
            self._procs.append(host.proc)
            self.wait_healthy(host)
        self._say("server hosts: " + ", ".join(
            f"{h.name} {h.address} ({'+'.join(h.services)})" for h in self.hosts.values()))

    def cli_env(self) -> dict[str, str]:
        return clean_env(PATH=f"{Path(self.cli).parent}{os.pathsep}{os.environ['PATH']}")

    def wait_healthy(self, host: Host, timeout: float = 120.0) -> None:
        """Until ``temporal operator cluster health`` on the host's frontend says SERVING
        (an open port is not enough: the frontend answers before its services are up)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if host.proc is not None and host.proc.poll() is not None:
                raise ClusterError(f"server host {host.name} exited with {host.proc.returncode};"
                                   f" see {host.log}:\n{tail(host.log)}")
            done = subprocess.run([self.cli, "operator", "cluster", "health", "--address",
                                   host.address], env=self.cli_env(), capture_output=True,
                                  text=True, timeout=30)
            last = (done.stdout + done.stderr).strip()
            if done.returncode == 0 and "SERVING" in done.stdout:
                return
            time.sleep(0.5)
        raise ClusterError(f"server host {host.name} not healthy after {timeout:g} s (last "
                           f"answer: {last[:300]}); see {host.log}:\n{tail(host.log)}")

    def _create_namespace(self) -> None:
        env = {**self.cli_env(), "TEMPORAL_ADDRESS": self.address,
               "TEMPORAL_NAMESPACE": self.namespace}
        self._run_logged(["sh", str(DEPLOY / "temporal" / "create-namespace.sh")],
                         self.namespace_log, env, "deploy/temporal/create-namespace.sh")

    async def _register(self) -> None:
        client = await self.client()
        added = await register_search_attributes(client, progress=self._say, wait_seconds=120)
        self._say(f"search attributes added: {', '.join(added) or 'none (all there)'}")

    # The Web UI

    def start_ui(self, codec_endpoint: str | None = None, port: int = 0,
                 cors_origins: str | None = None) -> str:
        """Start the Web UI server (again, if it runs: e.g. to point it at another codec
        server) on ``port`` (free if 0), decoding payloads through ``codec_endpoint``;
        its URL. Blocking: from a test, ``await asyncio.to_thread(cluster.start_ui, ...)``."""
        self.stop_ui()
        if not self.ui_bin:
            self.ui_bin, self.ui_config = _ensure("ensure-temporal-ui.sh")
        self.ui, self.codec_endpoint, self.cors_origins = True, codec_endpoint, cors_origins
        self.ui_port = port or free_ports(1, ["127.0.0.1"])[0]
        server = UiServer(self.ui_bin, self.ui_config, self.dir / "ui", self.ui_log, self.ui_port)
        try:
            server.start(self.address, self.namespace, codec_endpoint, cors_origins)
        except RuntimeError as err:
            raise ClusterError(str(err)) from None
        self._ui_server = server
        return server.url

    def stop_ui(self) -> None:
        if self._ui_server is not None:
            self._ui_server.stop()
            self._ui_server = None


async def _main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-ui", action="store_true", help="do not start the Web UI server")
    p.add_argument("--ui-port", type=int, default=0, help="the Web UI's port (free if 0)")
    p.add_argument("--codec-endpoint", help="the codec server the Web UI decodes through")
    p.add_argument("--namespace", default="default")
    p.add_argument("--log-level", default="warn", help="the server's log level")
    p.add_argument("--keep", action="store_true", help="keep data and logs after Ctrl-C")
    args = p.parse_args(argv)
    async with Cluster(namespace=args.namespace, ui=not args.no_ui, ui_port=args.ui_port,
                       codec_endpoint=args.codec_endpoint, log_level=args.log_level,
                       keep=args.keep) as cluster:
        total = sum(cluster.timings.values())
        print(f"\nTemporal cluster up in {total:.0f} s "
              f"(PostgreSQL 127.0.0.1:{cluster.postgres.port})")
        for host in cluster.hosts.values():
            print(f"  host {host.name}: {host.address}  {'+'.join(host.services)}  "
                  f"log {host.log}")
        if cluster.ui_url:
            print(f"  Web UI: {cluster.ui_url}")
        print(f"  namespace {cluster.namespace}; e.g. TEMPORAL_ADDRESS={cluster.address} "
              "offboarding list\nCtrl-C stops it.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("stopping the cluster...", flush=True)


def main() -> None:
    try:
        asyncio.run(_main(sys.argv[1:]))
    except ClusterError as err:
        sys.exit(f"cluster: {err}")


if __name__ == "__main__":
    main()
