"""A real MinIO server for the tests and make run: S3-compatible object storage on a free
port with its data in a folder, built by scripts/ensure-minio.sh. Creating a bucket is the
one S3 call obstore does not make; it is signed here (AWS Signature Version 4)."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from devtools.procs import free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"


def minio_binary() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "ensure-minio.sh")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


class MinioServer:
    def __init__(self, data: Path, *, user: str = "offboarding",
                 password: str = "offboarding-secret", binary: str | None = None) -> None:
        self.port, self.console = free_port(), free_port()
        self.user, self.password = user, password
        data.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password,
               "MINIO_BROWSER": "off"}
        self.proc = subprocess.Popen(
            [binary or minio_binary(), "server", str(data), "--quiet",
             "--address", f"127.0.0.1:{self.port}",
             "--console-address", f"127.0.0.1:{self.console}"],
            env=env, stdout=(data.parent / "minio.log").open("ab"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, timeout=60)
        # Listening is not ready: wait for the health endpoint.
        for _ in range(300):
            try:
                if httpx.get(f"{self.endpoint}/minio/health/ready", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            self.proc.poll()
            assert self.proc.returncode is None, "minio exited"
            time.sleep(0.1)
        else:
            raise RuntimeError("minio never became ready")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_bucket(self, bucket: str) -> None:
        url = f"{self.endpoint}/{bucket}"
        answer = httpx.put(url, headers=_signed("PUT", f"/{bucket}", f"127.0.0.1:{self.port}",
                                                self.user, self.password))
        if answer.status_code not in (200, 409):  # 409: it exists already
            raise RuntimeError(f"creating bucket {bucket}: {answer.status_code} {answer.text}")

    def close(self) -> None:
        stop(self.proc)


def _signed(method: str, path: str, host: str, key: str, secret: str) -> dict[str, str]:
    """The headers of an unpayloaded S3 request signed with SigV4."""
    now = datetime.now(UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    empty = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": empty, "x-amz-date": stamp}
    names = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", *(f"{k}:{headers[k]}" for k in sorted(headers)),
                           "", names, empty])
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signing = f"AWS4{secret}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        signing = hmac.new(signing, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")
    return headers
