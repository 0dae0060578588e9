"""The one dev stack: how ``make run``, the tests and the benchmark start a Temporal dev
server and give a worker process its settings, so the three never drift apart."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from devtools import temporal_server
from devtools.procs import free_port, stop, wait_for_port
from offboarding.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def temporal_cli() -> str:
    """The Temporal CLI binary, built once into the cache (scripts/ensure-temporal-cli.sh)."""
    if os.environ.get("TEMPORAL_CLI"):
        return os.environ["TEMPORAL_CLI"]
    out = subprocess.run([str(ROOT / "scripts/ensure-temporal-cli.sh")], check=True,
                         capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def write_private(path: Path, text: str) -> None:
    """A file only its owner reads (secrets: tokens, keys), created with that mode so it is
    never readable by others, not even for an instant; an earlier file of that name (of
    whatever mode) is replaced."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class DevServer:
    """A Temporal dev server on a SQLite file (so it survives a restart), our search
    attributes and dynamic config; headless unless it gets a UI port.

    ``ui_codec_endpoint`` (it may hold a token in its path) reaches the server through a
    private CLI environment file next to the database, not as a flag: a command line is
    what ``ps`` shows every local user."""

    def __init__(self, db: Path, log: Path, *, port: int | None = None,
                 ui_port: int | None = None, extra: list[str] | None = None,
                 log_level: str = "error", cli: str | None = None,
                 ui_codec_endpoint: str | None = None) -> None:
        self.cli = cli or temporal_cli()
        self.db, self.log, self.ui_port = db, log, ui_port
        self.port = port or free_port()
        self.extra, self.log_level = extra or [], log_level
        self.ui_codec_endpoint = ui_codec_endpoint
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DevServer:
        ui = ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.ui_codec_endpoint:
            # The CLI's environment file sets defaults for any flag of the same name.
            env_file = self.db.with_name("temporal-cli-env.yaml")
            write_private(env_file, json.dumps(
                {"env": {"default": {"ui-codec-endpoint": self.ui_codec_endpoint}}}))
            ui += ["--env-file", str(env_file)]
        self.proc = subprocess.Popen(
            [self.cli, "server", "start-dev", *ui, "--ip", "127.0.0.1", "--port",
             str(self.port), "--db-filename", str(self.db), "--log-level", self.log_level,
             *self.extra, *temporal_server.dev_server_flags()],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, self.proc, timeout=60)
        return self

    def restart(self) -> None:
        self.close()
        self.start()

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=40)


def settings_env(settings: Settings) -> dict[str, str]:
    """A worker's settings as the OFFBOARDING_* variables it reads them from."""
    return {
        "OFFBOARDING_TASK_QUEUE": settings.task_queue,
        "OFFBOARDING_SMTP_HOST": settings.smtp_host,
        "OFFBOARDING_SMTP_PORT": str(settings.smtp_port),
        **({"OFFBOARDING_SMTP_CA_FILE": str(settings.smtp_ca_file)}
           if settings.smtp_ca_file else {}),
        "OFFBOARDING_OPS_EMAIL": settings.ops_email,
        "OFFBOARDING_SCIM_SYSTEMS": json.dumps({
            name: {"base_url": str(system.base_url),
                   "token": system.token.get_secret_value() if system.token else None}
            for name, system in settings.scim_systems.items()}),
        "OFFBOARDING_STATE_DIR": str(settings.state_dir),
        "OFFBOARDING_CLIENT_DATA_ROOT": str(settings.client_data_root),
        "OFFBOARDING_DOCUMENTS_ROOT": str(settings.documents_root),
        "OFFBOARDING_TRANSFER_ROOT": str(settings.transfer_root),
        "OFFBOARDING_ARCHIVE_ROOT": str(settings.archive_root),
        "OFFBOARDING_METRICS_ADDRESS": settings.metrics_address or "",
        "OFFBOARDING_LOG_FORMAT": settings.log_format,
        "OFFBOARDING_PORTAL_URL": str(settings.portal_url),
        "OFFBOARDING_PORTAL_ADDRESS": settings.portal_address,
        "OFFBOARDING_REQUIRE_LINKS": str(settings.require_links).lower(),
        **({"OFFBOARDING_LINK_KEY_FILE": str(settings.link_key_file)}
           if settings.link_key_file else {}),
        "OFFBOARDING_WORKER_VERSIONING": str(settings.worker_versioning).lower(),
        "OFFBOARDING_DEPLOYMENT_NAME": settings.deployment_name,
        **({"OFFBOARDING_BUILD_ID": settings.build_id} if settings.build_id else {}),
        "OFFBOARDING_STORAGE": settings.storage,
        **({"OFFBOARDING_S3_BUCKET": settings.s3_bucket or "",
            "OFFBOARDING_S3_ENDPOINT": settings.s3_endpoint or "",
            "OFFBOARDING_S3_REGION": settings.s3_region,
            "OFFBOARDING_S3_PREFIX": settings.s3_prefix,
            "OFFBOARDING_S3_ACCESS_KEY_ID": settings.s3_access_key_id or "",
            "OFFBOARDING_S3_SECRET_ACCESS_KEY": (settings.s3_secret_access_key
                                                 .get_secret_value()
                                                 if settings.s3_secret_access_key else "")}
           if settings.storage == "s3" else {}),
    }


def worker_env(settings: Settings, address: str, **extra: str) -> dict[str, str]:
    """The whole environment of a worker process: this one's, without any OFFBOARDING_ or
    TEMPORAL_ variable of its own, plus the server's address and the settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFBOARDING_", "TEMPORAL_"))}
    return {**env, "TEMPORAL_ADDRESS": address, "OFFBOARDING_ENV_FILE": "/nonexistent",
            **settings_env(settings), **extra}
