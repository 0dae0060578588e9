"""Issue 20, small rows: secrets stay out of ``ps`` and out of files others can read.

- The codec server's token (it decrypts every history) is given by environment or by
  file, never on a command line, and a ``--token`` flag is refused rather than kept.
- ``make run`` gives the dev server's Web UI its codec endpoint (token in the path)
  through a private file, not as a flag, and writes ``offboarding.env`` (SCIM tokens)
  readable by its owner only, created so, never chmodded after.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devtools.procs import free_port, start_logged, stop, wait_for_port
from offboarding.security.codec import EncryptionCodec, load_keys
from offboarding.security.codec_server import TOKEN_ENV
from tests.conftest import ROOT
from tests.helpers import make_run_env

UI = "http://localhost:8233"


def _command_lines() -> list[str]:
    """Every process's command line that this user can read (what ``ps`` shows)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace"))
            except OSError:
                continue
    return found


def _codec_server(tmp_path: Path, *args: str, **env_extra: str
                  ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARDING_")}
    env.update({"OFFBOARDING_ENV_FILE": "/nonexistent",
                "OFFBOARDING_CODEC_KEY_FILE": str(tmp_path / "keys.json"), **env_extra})
    proc = subprocess.Popen([sys.executable, "-m", "offboarding.security.codec_server",
                             "--port", str(port), *args], env=env, cwd=ROOT,
                            stdout=(tmp_path / "codec.log").open("ab"),
                            stderr=subprocess.STDOUT)
    wait_for_port(port, proc)
    return proc, f"http://127.0.0.1:{port}"


def _status(base: str, token: str) -> int:
    return httpx.post(f"{base}/decode", json={"payloads": []},
                      headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.mark.parametrize("how", ["environment", "file"])
def test_the_codec_server_takes_its_token_without_showing_it_in_ps(
        codec: EncryptionCodec, tmp_path: Path, how: str) -> None:
    token = "operator-chosen-" + os.urandom(8).hex()
    if how == "file":
        secret = tmp_path / "codec-token"
        secret.write_text(token + "\n")
        proc, base = _codec_server(tmp_path, "--token-file", str(secret))
    else:
        proc, base = _codec_server(tmp_path, **{TOKEN_ENV: token})
    try:
        assert not [line for line in _command_lines() if token in line]
        assert _status(base, token) == 200
        assert _status(base, codec.server_token()) == 401, "the token given, not the derived"
    finally:
        stop(proc)


def test_a_token_on_the_command_line_is_refused(tmp_path: Path,
                                                codec: EncryptionCodec) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARDING_")}
    env.update({"OFFBOARDING_ENV_FILE": "/nonexistent",
                "OFFBOARDING_CODEC_KEY_FILE": str(tmp_path / "keys.json")})
    ran = subprocess.run([sys.executable, "-m", "offboarding.security.codec_server",
                          "--port", str(free_port()), "--token", "in-ps-for-all-to-see"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2 and "--token" in ran.stderr, ran.stderr


def test_an_unreadable_or_empty_token_file_stops_the_codec_server_with_its_name(
        tmp_path: Path, codec: EncryptionCodec) -> None:
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFBOARDING_")}
    env.update({"OFFBOARDING_ENV_FILE": "/nonexistent",
                "OFFBOARDING_CODEC_KEY_FILE": str(tmp_path / "keys.json")})
    for path in (empty, tmp_path / "missing"):
        ran = subprocess.run([sys.executable, "-m", "offboarding.security.codec_server",
                              "--port", str(free_port()), "--token-file", str(path)],
                             env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 2 and str(path) in ran.stderr, ran.stderr


def test_make_run_keeps_the_codec_token_out_of_ps_and_its_env_file_private(
    temporal_cli: str, tmp_path: Path,
) -> None:
    env, ports = make_run_env(temporal_cli, tmp_path)
    # An earlier run's file, readable by all: it is replaced by a private one.
    (tmp_path / "offboarding.env").write_text("OFFBOARDING_OLD='1'\n")
    (tmp_path / "offboarding.env").chmod(0o644)
    log = tmp_path / "run.log"
    run = start_logged([sys.executable, "-m", "devtools.run"], log, "Ctrl-C stops everything",
                       env=env, cwd=ROOT, timeout=120)
    try:
        keys = load_keys(tmp_path / "codec-keys.json", None, None)
        assert keys is not None
        token = keys.server_token()
        shown = [line for line in _command_lines() if token in line]
        assert not shown, f"the codec token is on a command line: {shown[0][:200]}"
        # The Web UI still gets its codec endpoint, token included.
        settings = httpx.get(f"http://127.0.0.1:{ports['TEMPORAL_UI_PORT']}/api/v1/settings",
                             timeout=10).json()
        assert settings["Codec"]["Endpoint"] == (
            f"http://127.0.0.1:{ports['OFFBOARDING_DEV_CODEC_PORT']}/t/{token}")
        for private in (tmp_path / "offboarding.env", tmp_path / "temporal-cli-env.yaml"):
            mode = stat.S_IMODE(private.stat().st_mode)
            assert mode == 0o600, f"{private.name} is {mode:o}"
        written = (tmp_path / "offboarding.env").read_text()
        assert "OFFBOARDING_SCIM_SYSTEMS" in written and "OFFBOARDING_OLD" not in written
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(timeout=60)
