"""A private PostgreSQL for devtools/cluster.py: its own data directory and port,
password-protected (scram-sha-256), listening on 127.0.0.1 only.

``initdb`` refuses to run as root ("cannot be run as root"): as root, ``initdb`` and
``pg_ctl`` run as the ``postgres`` user through ``runuser``, and the directory above the
data is made traversable (0711), not listable; as any other user they run as that user."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from devtools.server_host import free_ports, tail


class PostgresError(RuntimeError):
    """initdb or pg_ctl failed; the message names the log."""


class PrivatePostgres:
    def __init__(self, parent: Path, user: str, password: str) -> None:
        self.parent, self.user, self.password = parent, user, password
        self.dir = parent / "postgresql"
        self.data = self.dir / "data"
        self.log = self.dir / "postgresql.log"
        self.port = 0
        self.started = False

    def _as_pg_user(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        # A session of its own: a Ctrl-C at the terminal reaches the cluster's owner, which
        # stops the servers first and PostgreSQL last, not PostgreSQL under the servers.
        return subprocess.run([*self._as_pg_user(), "pg_ctl", "-D", str(self.data), *args],
                              capture_output=True, text=True, start_new_session=True)

    def start(self) -> None:
        self.dir.mkdir()
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            self.parent.chmod(0o711)
            for path in (self.dir, pwfile):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        try:
            subprocess.run([*self._as_pg_user(), "initdb", "-D", str(self.data), "-U",
                            self.user, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                            "-E", "UTF8", "--locale=C"],
                           check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as err:
            raise PostgresError(f"initdb failed: {err.stderr.strip()}") from None
        finally:
            pwfile.unlink()
        self.port = free_ports(1, ["127.0.0.1"])[0]
        # max_connections: each service of each host opens up to 20 + 10 (SQL_MAX_CONNS,
        # SQL_VIS_MAX_CONNS): 6 services in the cluster, 180 at most; the default is 100.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.dir} -c max_connections=250")
        done = self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", options)
        if done.returncode != 0:
            raise PostgresError(f"pg_ctl start failed ({done.stderr.strip()}); see {self.log}:"
                                f"\n{tail(self.log)}")
        self.started = True

    def stop(self) -> None:
        if self.started:
            self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")
            self.started = False
