"""The servers a benchmark phase runs on, fresh for each phase (the same dev stack as
make run and the tests, devtools/stack.py, or a started cluster), and the CPU each of
their processes spends over a phase."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.profiling import cpu_seconds, tree_cpu_seconds
from devtools import mailcapture
from devtools.cluster import Cluster
from devtools.minio import MinioServer
from devtools.procs import free_port, start_logged, stop
from devtools.scim import ScimServer
from devtools.stack import DevServer, worker_env
from offboarding.config import ScimSystem, Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    """Every server the benchmark needs, on free ports, in a temporary directory: the same
    dev stack as make run and the tests (devtools/stack.py)."""

    dir: Path
    storage: str = "filesystem"
    """Or ``s3``: the outbox, exports and archives in a MinIO bucket, as beyond one machine."""
    cluster: Cluster | None = None
    """A started cluster to run on instead of a dev server of the stack's own."""
    server: DevServer | None = None
    minio: MinioServer | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    scim: ScimServer | None = None
    controller: Any = None
    capture: Any = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        if self.cluster is not None:
            return self.cluster.address
        assert self.server is not None
        return self.server.address

    def cpu_counters(self) -> dict[str, Callable[[], float]]:
        """The Temporal side's CPU seconds so far: the dev server (SQLite inside it), or
        the cluster's server hosts and its PostgreSQL (the postmaster and its backends,
        living and reaped)."""
        if self.cluster is None:
            assert self.server is not None and self.server.proc is not None
            pid = self.server.proc.pid
            return {"server": lambda: cpu_seconds(pid), "db": lambda: 0.0}
        pids = [h.proc.pid for h in self.cluster.hosts.values() if h.proc is not None]
        postmaster = int((self.cluster.postgres.data / "postmaster.pid").read_text().split()[0])
        return {"server": lambda: sum(cpu_seconds(pid) for pid in pids),
                "db": lambda: tree_cpu_seconds(postmaster)}

    def start(self, task_queue: str) -> None:
        if self.cluster is None:
            self.server = DevServer(self.dir / "temporal.db", self.dir / "server.log").start()
            assert self.server.proc is not None
            self.procs.append(self.server.proc)  # stopped last, in close()
        smtp_port = free_port()
        self.controller, self.capture = mailcapture.start("127.0.0.1", smtp_port)
        self.scim = ScimServer(free_port(), ["crm", "wiki"], "bench-token",
                               log=self.dir / "scim.log")
        settings = Settings(
            _env_file=None, task_queue=task_queue, smtp_host="127.0.0.1", smtp_port=smtp_port,
            metrics_address="", log_format="json",
            scim_systems={k: ScimSystem.model_validate(v)
                          for k, v in self.scim.settings_json().items()},
            state_dir=self.dir / "state", client_data_root=self.dir / "client-data",
            documents_root=ROOT / "examples/documents", transfer_root=self.dir / "transfer",
            archive_root=self.dir / "archive")
        if self.storage == "s3":
            self.minio = MinioServer(self.dir / "minio" / "data")
            self.minio.make_bucket("bench")
            settings = settings.model_copy(update={
                "storage": "s3", "s3_bucket": "bench", "s3_endpoint": self.minio.endpoint,
                "s3_access_key_id": self.minio.user,
                "s3_secret_access_key": SecretStr(self.minio.password)})
        self.env = worker_env(settings, self.address)

    def start_process(self, args: list[str], log: str, ready: str) -> subprocess.Popen[bytes]:
        proc = start_logged(args, self.dir / log, ready, env=self.env, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        if self.scim is not None:
            self.scim.close()
        if self.controller is not None:
            self.controller.stop()
        if self.minio is not None:
            self.minio.close()


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class CpuMeter:
    """CPU seconds per process over a phase, divided by the phase's N. "bench" is this
    process: the driver playing the humans, and the SMTP server in its thread; "server"
    and "db" the Temporal side (Stack.cpu_counters)."""

    def __init__(self, stack: Stack, **procs: subprocess.Popen[bytes]) -> None:
        self.counters: dict[str, Callable[[], float]] = {
            name: functools.partial(cpu_seconds, p.pid) for name, p in procs.items()}
        self.counters |= stack.cpu_counters()
        self.counters["bench"] = functools.partial(cpu_seconds, os.getpid())
        self.before = {name: count() for name, count in self.counters.items()}

    def per(self, n: int) -> dict[str, float]:
        return {name: (count() - self.before[name]) / n
                for name, count in self.counters.items()}


@asynccontextmanager
async def fresh_stack(storage: str = "filesystem",
                      task_queue: str = "bench-offboarding") -> AsyncIterator[Stack]:
    """A started stack on servers of its own; their directory (logs, SQLite file) is
    removed afterwards, or kept and named when the work failed."""
    tmp = Path(tempfile.mkdtemp(prefix="offboarding-bench-"))
    stack = Stack(tmp, storage)
    try:
        stack.start(task_queue)
        yield stack
    except BaseException:
        stack.close()
        say(f"failed: the servers' logs are kept in {tmp}")
        raise
    stack.close()
    shutil.rmtree(tmp, ignore_errors=True)
