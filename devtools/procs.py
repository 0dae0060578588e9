"""Small helpers for the processes the dev tools, tests and benchmark start: free ports,
readiness, stopping."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None,
                  timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL: nothing outlives its owner."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_logged(args: list[str], log: Path, ready: str, *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """Start a process whose output is appended to ``log``; return once ``ready`` shows in
    the log one more time than before (so a restart waits for its own line, not the last
    run's). A process that exits or stays silent is stopped, with its log's tail."""
    before = log.read_text().count(ready) if log.exists() else 0
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while log.read_text().count(ready) <= before:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{' '.join(args)} did not start (no {ready!r} in {log}):\n"
                               f"{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc
