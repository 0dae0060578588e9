"""Which Temporal the CLI (and the demo) talks to, from its flags, the environment, a
profile or the address ``make run`` wrote, in that order."""

from __future__ import annotations

import argparse
import os
from typing import Any

from temporalio.client import Client
from temporalio.service import TLSConfig

from offboarding.client import Refused
from offboarding.config import Settings
from offboarding.temporal import DEFAULT_ADDRESS, connect


async def connect_for_cli(args: argparse.Namespace, settings: Settings) -> Client:
    """The server: --address, else TEMPORAL_ADDRESS, else the profile (--profile, --config-file,
    TEMPORAL_PROFILE), else the one `make run` wrote, else localhost:7233; the other flags
    override what those say. An unanswering server is named with its address's source."""
    flag = vars(args).get  # the demo's parser has --address only
    profile, config_file = flag("profile"), flag("config_file")
    address: str | None
    if args.address:
        address, source = args.address, "--address"
    elif os.environ.get("TEMPORAL_ADDRESS"):
        address, source = os.environ["TEMPORAL_ADDRESS"], "TEMPORAL_ADDRESS"
    elif profile or config_file or os.environ.get("TEMPORAL_PROFILE"):
        address, source = None, f"profile {profile or os.environ.get('TEMPORAL_PROFILE')}"
    elif settings.temporal_address:
        address, source = settings.temporal_address, "OFFBOARDING_TEMPORAL_ADDRESS"
    else:
        address, source = DEFAULT_ADDRESS, "the default"
    overrides: dict[str, Any] = {k: flag(k) for k in ("namespace", "api_key") if flag(k)}
    tls = _tls(args)
    if tls is not None:
        overrides["tls"] = tls
    try:
        return await connect(address, settings.codec(), profile=profile,
                             config_file=config_file, **overrides)
    except (RuntimeError, ValueError, OSError) as err:
        where = address or "the address the profile names"
        raise Refused(f"cannot reach Temporal at {where} (from {source}): "
                      f"{str(err).splitlines()[0][:200]}") from None


def _tls(args: argparse.Namespace) -> TLSConfig | None:
    flag = vars(args).get
    paths = {name: flag(name) for name in ("tls_cert_path", "tls_key_path", "tls_ca_path")}
    if not flag("tls") and not any(paths.values()) and not flag("tls_server_name"):
        return None
    read: dict[str, bytes | None] = {}
    for name, path in paths.items():
        try:
            read[name] = path.read_bytes() if path else None
        except OSError as err:
            option = "--" + name.replace("_", "-")
            raise Refused(f"{option} {path}: {err.strerror or type(err).__name__}") from None
    return TLSConfig(client_cert=read["tls_cert_path"],
                     client_private_key=read["tls_key_path"],
                     server_root_ca_cert=read["tls_ca_path"], domain=flag("tls_server_name"))
