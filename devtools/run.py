"""``make run``: everything needed to use the offboarding worker on one machine.

Starts, in the foreground: the Temporal dev server (SQLite file under the data directory,
so offboardings survive a restart; search attributes registered), a local SMTP server
that keeps every message on disk, a SCIM server holding the example clients' accounts,
the worker, and the approvals portal the links in the mail open. Ctrl-C (or SIGTERM)
stops all of them; nothing is left running.

Environment (all optional): OFFBOARDING_RUN_DIR (data), TEMPORAL_PORT (7233),
TEMPORAL_UI_PORT (8233), OFFBOARDING_SMTP_PORT (1025), OFFBOARDING_DEV_SCIM_PORT (8090),
OFFBOARDING_DEV_SCIM_TOKEN, OFFBOARDING_METRICS_ADDRESS (127.0.0.1:9464),
OFFBOARDING_DEV_CODEC_PORT (8081), OFFBOARDING_DEV_PORTAL_PORT (8070),
TEMPORAL_CLI (an existing CLI binary).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from devtools import mailcapture
from devtools.procs import stop
from devtools.scim import ScimServer
from devtools.stack import DevServer, settings_env, temporal_cli, write_private
from offboarding.config import ScimSystem, Settings
from offboarding.models.loading import load_client_file
from offboarding.security import links
from offboarding.security.codec import EncryptionCodec, load_keys, new_key_file
from offboarding.security.codec_server import Access, Served, default_hosts, make_app
from offboarding.temporal import connect, make_current, register_search_attributes

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _port(var: str, default: int) -> int:
    raw = os.environ.get(var, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        sys.exit(f"run: {var}={raw!r} is not a port number (1-65535)")
    return int(raw)


def seed_examples(scim: ScimServer, data: Path) -> None:
    """The example clients' accounts and data, so the demo revokes and transfers real ones."""
    for example in sorted(EXAMPLES.glob("*.yaml")):
        client = load_client_file(example)
        for system in client.systems:
            present = scim.users(system.system)
            for user in system.users:
                if user not in present:
                    scim.add_user(system.system, user)
    for sub in ("client-data", "documents"):
        target = data / sub
        if not target.exists():
            shutil.copytree(EXAMPLES / sub, target)


async def promote(address: str, codec: EncryptionCodec, deployment: str,
                  build_id: str) -> None:
    """Make the worker's version the deployment's current one, once it polls."""
    await make_current(await connect(address, codec), deployment, build_id)


def main() -> int:
    data = Path(os.environ.get("OFFBOARDING_RUN_DIR", ROOT / "data")).resolve()
    data.mkdir(parents=True, exist_ok=True)
    t_port, ui_port = _port("TEMPORAL_PORT", 7233), _port("TEMPORAL_UI_PORT", 8233)
    smtp_port = _port("OFFBOARDING_SMTP_PORT", 1025)
    scim_port = _port("OFFBOARDING_DEV_SCIM_PORT", 8090)
    scim_token = os.environ.get("OFFBOARDING_DEV_SCIM_TOKEN", "dev-scim-token")
    metrics = os.environ.get("OFFBOARDING_METRICS_ADDRESS", "127.0.0.1:9464")
    codec_port = _port("OFFBOARDING_DEV_CODEC_PORT", 8081)
    key_file = data / "codec-keys.json"
    if not key_file.exists():
        new_key_file(key_file)  # payloads are encrypted from the first offboarding on
    codec = load_keys(key_file, None, None)
    assert codec is not None
    portal_port = _port("OFFBOARDING_DEV_PORTAL_PORT", 8070)
    link_keys = data / "link-keys.json"
    if not link_keys.exists():
        links.new_key_file(link_keys)  # signs the approvers' links
    cli = temporal_cli()
    logs = data / "logs"
    logs.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    smtp = scim = codec_server = None
    try:
        token = codec.server_token()  # given to the UI in its codec endpoint's path
        codec_server = Served(make_app(codec, ui_origin=f"http://localhost:{ui_port}",
                                       access=Access(token=token),
                                       hosts=default_hosts("127.0.0.1", codec_port, [])),
                              "127.0.0.1", codec_port)
        dev = DevServer(data / "temporal.db", logs / "temporal.log", port=t_port,
                        ui_port=ui_port, log_level="warn", cli=cli,
                        ui_codec_endpoint=f"http://127.0.0.1:{codec_port}/t/{token}")
        dev.start()
        assert dev.proc is not None
        server = dev.proc
        procs.append(server)
        address = dev.address

        async def register() -> None:
            await register_search_attributes(await connect(address, codec))

        asyncio.run(register())
        smtp, _ = mailcapture.start("127.0.0.1", smtp_port, data / "mail")
        scim = ScimServer(scim_port, ["crm", "wiki"], scim_token, log=logs / "scim.log")
        seed_examples(scim, data)
        settings = Settings(
            _env_file=None, smtp_host="127.0.0.1", smtp_port=smtp_port,
            scim_systems={k: ScimSystem.model_validate(v)
                          for k, v in scim.settings_json().items()},
            state_dir=data, client_data_root=data / "client-data",
            documents_root=data / "documents", transfer_root=data / "transfer",
            archive_root=data / "archive", metrics_address=metrics,
            link_key_file=link_keys, portal_url=f"http://127.0.0.1:{portal_port}",
            portal_address=f"127.0.0.1:{portal_port}", worker_versioning=True)
        env = {
            **os.environ, "TEMPORAL_ADDRESS": address, **settings_env(settings),
            "OFFBOARDING_CODEC_KEY_FILE": str(key_file),
            # For the CLI in another terminal: it follows this server, whatever its port.
            "OFFBOARDING_TEMPORAL_ADDRESS": address,
        }
        env_file = data / "offboarding.env"
        # It holds the SCIM tokens: readable by this user only.
        write_private(env_file, "".join(f"{k}='{v}'\n" for k, v in env.items()
                                        if k.startswith("OFFBOARDING_")))
        def start_worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env,
                                    cwd=ROOT, stdout=(logs / "worker.log").open("ab"),
                                    stderr=subprocess.STDOUT, start_new_session=True)

        worker = start_worker()
        procs.append(worker)
        build_id = settings.worker_build_id()
        asyncio.run(promote(address, codec, settings.deployment_name, build_id))
        portal = subprocess.Popen([sys.executable, "-m", "offboarding.portal.main"], env=env,
                                  cwd=ROOT, stdout=(logs / "portal.log").open("ab"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(portal)
        print(f"""
  Temporal dev server  {address}   (state: {data / 'temporal.db'})
  Web UI               http://localhost:{ui_port}
  Captured mail        {data / 'mail'}   (one .eml per message, index.txt lists them)
  SCIM server          {scim.base_url('crm')}, {scim.base_url('wiki')}
  Worker               pid {worker.pid}, task queue client-offboarding,
                       version {settings.deployment_name}/{build_id} (current)
                       (log: {logs / 'worker.log'}; restarted if it dies)
  Approvals portal     {settings.portal_url}   (log: {logs / 'portal.log'})
                       approvers open it from the links in their mail
  Metrics              http://{metrics}/metrics
  Payload encryption   key file {key_file}
                       the UI decodes via http://127.0.0.1:{codec_port} (token from the key)

  Next, in another terminal (the CLI reads the worker's settings from {data / 'offboarding.env'}):
    .venv/bin/python -m devtools.demo                # a whole offboarding in ~2 minutes
    .venv/bin/offboarding start --client-file examples/contract-end.yaml
    .venv/bin/offboarding list

  Ctrl-C stops everything.
""", flush=True)
        restarts: list[float] = []
        while not stopping.wait(0.5):
            if server.poll() is not None:
                print(f"run: the Temporal server exited with {server.returncode}; stopping",
                      flush=True)
                stopping.set()
            elif portal.poll() is not None:
                print(f"run: the portal exited with {portal.returncode}; stopping (see "
                      f"{logs / 'portal.log'})", flush=True)
                stopping.set()
            elif worker.poll() is not None and not stopping.is_set():
                # A worker that dies (a crash, a kill) is restarted and the servers stay
                # up: the offboardings resume where the history says. One that keeps
                # dying at once (a bad setting) stops the stack, with its log named.
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > 5:
                    print(f"run: the worker died {len(restarts)} times in a minute; stopping "
                          f"(see {logs / 'worker.log'})", flush=True)
                    stopping.set()
                    continue
                old = worker
                procs.remove(old)
                worker = start_worker()
                procs.append(worker)
                print(f"run: the worker (pid {old.pid}) exited with {old.returncode}; "
                      f"restarted it as pid {worker.pid}", flush=True)
        return 0
    finally:
        print("stopping the portal, the worker, the SCIM and SMTP servers and the Temporal "
              "server...",
              flush=True)
        for p in reversed(procs):
            stop(p, timeout=40)
        if scim is not None:
            scim.close()
        if smtp is not None:
            smtp.stop()
        if codec_server is not None:
            codec_server.shutdown()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
