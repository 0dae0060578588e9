"""Application settings for the worker and the CLI, read from the environment.

Temporal connection settings are *not* here: they follow Temporal's own environment
configuration (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, TLS, API key, profiles),
see ``temporal.py``. Everything here is ours, prefixed ``OFFBOARDING_``, and validated
once at start so a bad value is reported by name before any work is taken.
"""

from __future__ import annotations

import ipaddress
import json
import os
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from offboarding.models.status import Timings
from offboarding.security.codec import EncryptionCodec, load_keys
from offboarding.security.links import LinkKeys, load_link_keys

TASK_QUEUE = "client-offboarding"
"""The one task queue: the worker polls it, the CLI starts offboardings on it."""


class ScimSystem(BaseModel):
    """One system where clients hold accounts, reached over SCIM 2.0 (RFC 7644)."""

    base_url: HttpUrl
    token: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)


class Settings(BaseSettings):
    """Everything the worker needs besides the Temporal connection."""

    # `make run` writes data/offboarding.env so the CLI and demo share the worker's settings;
    # real environment variables win over it.
    model_config = SettingsConfigDict(env_prefix="OFFBOARDING_", extra="ignore",
                                      env_nested_delimiter="__",
                                      env_file=os.environ.get("OFFBOARDING_ENV_FILE",
                                                              "data/offboarding.env"))

    task_queue: str = TASK_QUEUE
    temporal_address: str | None = None
    """The Temporal server the CLI uses when neither --address nor TEMPORAL_ADDRESS says:
    `make run` writes the one it started here, so the CLI follows it to any port."""
    worker_versioning: bool = False
    """Run the worker as a Worker Deployment version (``deployment_name``, ``build_id``):
    new offboardings go to the deployment's current version, set when a deploy is
    promoted (``temporal worker deployment set-current-version``; make run does it)."""
    deployment_name: str = "client-offboarding"
    build_id: str | None = None
    """The worker's version; by default the package's version."""
    workflow_sandbox: bool = False
    """Run the workflow in Temporal's sandbox. Off by default: it polices one module, which
    the tests police statically and run sandboxed, at two thirds of the workflow's CPU
    (``offboarding.worker.workflow_runner``). On, to check a change in production's
    conditions."""
    sticky_queue_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    """How long a task for a workflow this worker holds in its cache waits for it before
    the server sends it to any worker (the SDK's default, 10 s). Now and then sdk-core 1.35
    answers a status query only once this passes; the CLI and the portal do not wait for
    that, they ask again after 2 s (``client.QUERY_PATIENCE``). 3 s cost the server about 7%
    more CPU per offboarding on a saturated machine (bench/README.md)."""
    require_second_ops: bool = True
    """Redirecting a contact and skipping access revocation need two different ops people
    (two --by). Turn off only where one person acting alone is acceptable."""

    require_links: bool = False
    """Approver decisions (approve, dispute, verify, reject) are accepted only through the
    approver's own emailed link, not the CLI or a signal. Fixed per offboarding at start."""
    portal_url: HttpUrl = HttpUrl("http://127.0.0.1:8070")
    """The approvals portal as approvers reach it (behind a proxy: the public URL); the
    links in mail start with it."""
    portal_address: str = "127.0.0.1:8070"
    """Where the portal listens (host:port)."""
    portal_workers: int = Field(default=1, ge=1, le=64)
    """Portal processes sharing the address: each page asks Temporal a query, so a
    month-end burst of approvers is served by several (bench/README.md measures it)."""
    portal_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """The reverse proxies (addresses or networks) whose X-Forwarded-For and -Proto the
    portal believes, e.g. ``127.0.0.1`` or ``10.0.0.0/8,fd00::/8`` (or a JSON list). Empty,
    the default: none, and a request comes from the address that connected."""
    link_key_file: Path | None = None
    """Ed25519 keys that sign approval links: {"active": "l1", "keys": {"l1": "<base64 of
    32 bytes>"}}. Without keys, mail asks approvers to answer through ops."""
    link_keys: SecretStr | None = None
    """Or the keys as JSON in the environment: {"l1": "<base64 of 32 bytes>"} ..."""
    link_active_key: str | None = None
    """... and the id of the key new links are signed with."""
    link_validity_days: float = Field(default=14, gt=0, le=90)
    """How long a link can be used; every reminder carries a fresh one."""

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: Path | None = None
    """PEM certificates to trust for the SMTP server's TLS instead of the system's CAs
    (a relay with a private CA). Read once per worker, not once per connection."""
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, lt=30)
    """Below the email activity's 30 s timeout, so a hung server fails the attempt cleanly."""
    mail_from: str = "Client Services <client-services@example.com>"
    ops_email: str = "ops@example.com"
    message_id_domain: str = "offboarding.example.com"

    scim_systems: dict[str, ScimSystem] = Field(default_factory=dict)

    timings: Timings = Timings()
    """Deadlines and reminder periods for new offboardings, e.g.
    OFFBOARDING_TIMINGS__SETTLEMENT_REMINDER_DAYS=2. The CLI passes them in the workflow
    input, so a running offboarding keeps the ones it started with."""

    playbook: Path | None = None
    """The company's playbook (``docs/playbooks.md``) new offboardings start with when
    ``start`` names none (OFFBOARDING_PLAYBOOK); ``start --playbook none`` starts one
    without. Read and checked by the CLI at start: a running offboarding keeps the one it
    started with, whatever this says later."""

    codec_key_file: Path | None = None
    """JSON key file for payload encryption: {"active": "k2", "keys": {"k1": "<base64>"}}."""
    codec_keys: SecretStr | None = None
    """Or the keys as JSON in the environment: {"k1": "<base64 of 32 bytes>"} ..."""
    codec_active_key: str | None = None
    """... and the id of the key new payloads are encrypted with."""

    metrics_address: str = "127.0.0.1:9464"
    """Where the worker serves Prometheus metrics (host:port); empty to turn them off."""
    log_format: Literal["json", "text"] = "json"

    state_dir: Path = Path("data")
    """Where the worker keeps its outbox of sent mail (one file per Message-ID)."""
    client_data_root: Path = Path("data/client-data")
    """Where the client-owned data sets named in client files live."""
    documents_root: Path = Path("data/documents")
    transfer_root: Path = Path("data/transfer")
    archive_root: Path = Path("data/archive")

    storage: Literal["filesystem", "s3"] = "filesystem"
    """Where the outbox, exports and archives go: the folders above, or an S3-compatible
    bucket shared by every worker (under ``<s3_prefix>outbox/``, ``transfer/``, ``archive/``)."""
    s3_bucket: str | None = Field(default=None, validate_default=True)
    s3_endpoint: str | None = None
    """For S3-compatible stores (MinIO, ...); empty for AWS itself."""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_access_key_id: str | None = None
    """Else the standard AWS variables (AWS_ACCESS_KEY_ID, ...) are used."""
    s3_secret_access_key: SecretStr | None = None

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_for_s3(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("storage") == "s3" and not value:
            raise ValueError("is required when OFFBOARDING_STORAGE=s3")
        return value

    @field_validator("portal_trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [
                part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, list):
            for entry in value:
                try:
                    ipaddress.ip_network(str(entry), strict=False)
                except ValueError:
                    raise ValueError(f"{str(entry)[:60]!r} is not an address or a network "
                                     "(e.g. 127.0.0.1, 10.0.0.0/8)") from None
        return value

    @field_validator("playbook", mode="before")
    @classmethod
    def _no_playbook(cls, value: object) -> object:
        """Empty or ``none``: no playbook (an empty path would be the current folder)."""
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value

    @field_validator("smtp_host", "mail_from", "ops_email", "message_id_domain")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise ValueError("must be a single line (no CR or LF)")
        return value

    @property
    def outbox_dir(self) -> Path:
        return self.state_dir / "outbox"

    def codec(self) -> EncryptionCodec | None:
        """The payload codec, or None when no keys are configured (plaintext payloads)."""
        return load_keys(self.codec_key_file,
                         self.codec_keys.get_secret_value() if self.codec_keys else None,
                         self.codec_active_key)

    def worker_build_id(self) -> str:
        return self.build_id or package_version("client-offboarding")

    def links(self) -> LinkKeys | None:
        """The approval-link keys, or None when none are configured."""
        return load_link_keys(self.link_key_file,
                              self.link_keys.get_secret_value() if self.link_keys else None,
                              self.link_active_key)

    def portal_link(self, workflow_id: str, token: str) -> str:
        return f"{str(self.portal_url).rstrip('/')}/o/{quote(workflow_id, safe='')}/{token}"


class SettingsError(Exception):
    """Raised with one line per bad environment variable, naming it and its value."""


def load_settings() -> Settings:
    """Load the settings, turning pydantic's report into one the operator can act on."""
    # The env file is named when settings are loaded, not when this module was imported.
    env_file = os.environ.get("OFFBOARDING_ENV_FILE", "data/offboarding.env")
    try:
        return Settings(_env_file=env_file)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"])
            var = "OFFBOARDING_" + str(e["loc"][0]).upper() if e["loc"] else "OFFBOARDING_*"
            secret = any(w in field for w in ("password", "token", "keys"))
            shown = "<hidden>" if secret else repr(e["input"])
            lines.append(f"{var} ({field}) = {shown}: {e['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
