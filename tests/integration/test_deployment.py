"""The compose file, checked without a Docker engine: it validates against the Compose
specification's JSON schema, and the worker's environment is what our settings model and
Temporal's environment configuration accept."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from devtools import temporal_server
from offboarding import tracing
from offboarding.config import Settings
from offboarding.security.codec_server import TOKEN_ENV

ROOT = Path(__file__).resolve().parents[2]
TEMPORAL_ENV = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE",
                "TEMPORAL_TLS", "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH",
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME",
                "TEMPORAL_CONFIG_FILE", "TEMPORAL_CORS_ORIGINS"}
OTEL_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_the_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema_path = subprocess.run([str(ROOT / "scripts/ensure-compose-schema.sh")], check=True,
                                 capture_output=True, text=True).stdout.strip()
    schema = json.loads(Path(schema_path).read_text())
    # The schema declares draft 2019-09 (spelt with a trailing '#').
    validator = jsonschema.Draft201909Validator(schema)
    validator.validate(compose)
    broken = {**compose, "services": {"worker": {"image": "x", "restart": ["always"]}}}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


ENV_EXAMPLE = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))


def _resolve(value: str) -> str:
    """``${VAR:-default}`` and ``${VAR:?why}`` as compose resolves them with the operator's
    .env made from .env.example (a required one missing from it is a failure)."""
    def one(m: re.Match[str]) -> str:
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if op == ":?":
            assert name in ENV_EXAMPLE, f"{name} is required but .env.example lacks it"
        return ENV_EXAMPLE.get(name, rest if op == ":-" else "")
    return re.sub(r"\$\{([A-Z_]+)(:-|:\?)([^}]*)\}", one, value)


@pytest.mark.parametrize("service", ["worker", "setup", "portal", "codec-server"])
def test_the_worker_environment_matches_the_settings_model(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {k: _resolve(str(v)) for k, v in compose["services"][service]["environment"].items()}
    ours = {k for k in env if k.startswith("OFFBOARDING_")}
    own = {TOKEN_ENV} if service == "codec-server" else set()  # read by that server alone
    unknown = {k for k in ours - own
               if k.removeprefix("OFFBOARDING_").split("__")[0].lower() not in
               Settings.model_fields}
    assert not unknown, f"{service}: variables the settings model does not know: {unknown}"
    assert not set(env) - ours - TEMPORAL_ENV - OTEL_ENV, \
        "only our settings, Temporal's and OpenTelemetry's variables"
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    for key in [k for k in os.environ if k.startswith("OFFBOARDING_")]:
        if key != "OFFBOARDING_ENV_FILE":
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # raises, naming the variable, if a value is wrong
    if service == "worker":
        assert settings.smtp_host == "mailpit" and settings.smtp_port == 1025
        # Nothing a retry on another replica needs is on this one's disk.
        assert settings.storage == "s3" and settings.s3_endpoint == "http://minio:9000"
        # Scrapeable from outside the container.
        assert settings.metrics_address.startswith("0.0.0.0:")
    if "OTEL_EXPORTER_OTLP_ENDPOINT" in env:
        assert not tracing.wanted(), "tracing is off until .env names a collector"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318")
        assert tracing.wanted()


TWO_NUMBER_VERSIONS = {"postgres"}
"""Images whose releases have two numbers: PostgreSQL's 16.6 is a patch release."""


def pinned(image: str) -> bool:
    """A tag naming one release: a patch version (three numbers, two for PostgreSQL), or
    MinIO's release date. ``python:3.11-slim`` or ``postgres:16`` move under the name."""
    name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
    numbers = 2 if name.rpartition("/")[2] in TWO_NUMBER_VERSIONS else 3
    return bool(re.match(r"v?" + r"\.".join([r"\d+"] * numbers) + r"(?![.\d])", tag)
                or re.match(r"RELEASE\.\d{4}-\d\d-\d\dT", tag))


def test_the_pin_check_tells_a_release_from_a_moving_tag() -> None:
    for moving in ("python:3.11-slim", "python:3.11", "python", "postgres:16",
                   "jaegertracing/all-in-one:latest", "temporalio/server:1.30",
                   "minio/minio:latest", "temporalio/server:1.30.1.2"):
        assert not pinned(moving), moving
    for fixed in ("python:3.11.15-slim-trixie", "postgres:16.6", "prom/prometheus:v3.5.0",
                  "minio/minio:RELEASE.2025-04-22T22-12-26Z", "temporalio/server:1.30.1"):
        assert pinned(fixed), fixed


def dockerfile_bases() -> list[str]:
    """Every image a ``FROM`` line of the Dockerfile names (a stage's alias left out)."""
    lines = re.findall(r"^FROM\s+(.+)$", (ROOT / "Dockerfile").read_text(), re.M | re.I)
    return [next(w for w in line.split() if not w.startswith("--")) for line in lines]


def test_every_image_and_base_image_is_pinned(compose: dict[str, Any]) -> None:
    """Issue 23: the Dockerfile's ``FROM python:3.11-slim`` moved with every 3.11 release
    while the check looked at compose's ``image:`` lines only."""
    bases = dockerfile_bases()
    assert bases, "the Dockerfile names its base image"
    images = {f"Dockerfile FROM {b}": b for b in bases} | {
        f"service {name}": service["image"] for name, service in compose["services"].items()}
    assert not [f"{where}: {image}" for where, image in images.items() if not pinned(image)]


def test_every_image_is_pinned_and_every_start_waits_for_what_it_needs(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        image = service.get("image", "")
        assert pinned(image), f"{name}: {image!r} is not pinned"
        needs = service.get("depends_on", {})
        assert isinstance(needs, dict), f"{name}: depends_on without conditions"
        for other, how in needs.items():
            assert other in services, f"{name} depends on unknown {other}"
            wanted = ("service_healthy" if "healthcheck" in services[other]
                      else "service_completed_successfully"
                      if services[other].get("restart", "").startswith("on-failure")
                      else "service_started")
            assert how["condition"] == wanted, f"{name} -> {other}: {how}"
    # Payloads are never plaintext in this deployment: every process that touches them
    # has the keys, and the UI decodes through the codec server.
    for name in ("worker", "portal", "codec-server"):
        assert "OFFBOARDING_CODEC_KEYS" in services[name]["environment"], name
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].startswith(
        "http://localhost:8081/")
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text()


def test_what_runs_or_reads_offboardings_starts_once_setup_has_finished(
        compose: dict[str, Any]) -> None:
    """Issue 20, row 13: the worker and the portal started while setup was still adding
    the search attributes (or waiting for the namespace), and lived through it only by
    restarting. Setup itself waits until the namespace and attributes are visible."""
    services = compose["services"]
    ours = services["setup"]["image"]
    for name in ("worker", "portal"):
        assert services[name]["depends_on"].get("setup") == {
            "condition": "service_completed_successfully"}, name
    for name, service in services.items():
        if service.get("image") == ours and name not in ("setup", "codec-server"):
            assert "setup" in service.get("depends_on", {}), f"{name} does not wait for setup"
    assert services["setup"]["command"][-1] == "setup"


ONE_SHOT = {"temporal-schema", "temporal-namespace", "setup", "minio-bucket", "promote-version"}
"""The jobs that run once and exit; every other service runs for good."""


def test_every_long_running_service_restarts_and_every_job_retries(
        compose: dict[str, Any]) -> None:
    """Issue 23: PostgreSQL, the server, the UI, MinIO, Mailpit, Prometheus and Jaeger had
    no restart policy: one crash, or a reboot of the Docker host, and they stayed down."""
    for name, service in compose["services"].items():
        restart = service.get("restart", "")
        if name in ONE_SHOT:
            assert restart.startswith("on-failure"), f"{name}: {restart!r}"
        else:
            assert restart in ("unless-stopped", "always"), f"{name}: {restart!r}"


def test_published_ports_are_on_loopback_unless_the_operator_says_otherwise(
        compose: dict[str, Any]) -> None:
    """Issue 23: "7233:7233" published the unauthenticated frontend (and the UI, MinIO's
    console, Mailpit...) on every interface of the Docker host. Each is bound to
    ${PUBLISH_ADDRESS:-127.0.0.1}; the README says to put TLS and auth in front."""
    published = [(name, str(port)) for name, service in compose["services"].items()
                 for port in service.get("ports", [])]
    assert published
    for name, port in published:
        assert _resolve(port).startswith("127.0.0.1:"), f"{name}: {port}"
    assert "PUBLISH_ADDRESS" not in ENV_EXAMPLE, "commented out: loopback by default"


def test_the_server_is_configured_as_the_native_cluster_taught(compose: dict[str, Any]) -> None:
    """Issue 23, what devtools/cluster.py's native run taught about the server's settings."""
    env = compose["services"]["temporal"]["environment"]
    # Chosen, not the image's default of 4: it can never change for a database.
    shards = int(env["NUM_HISTORY_SHARDS"])
    assert shards >= 64, shards
    text = (ROOT / "docker-compose.yml").read_text()
    said = text[:text.index("NUM_HISTORY_SHARDS:")].rpartition("environment:")[2]
    assert "never" in said and "stored" in said, "the number is said why next to it"
    # Ports in the template's defaults or set below 32768 (cluster_membership's smallint).
    for key, value in env.items():
        if key.endswith("_PORT"):
            assert int(value) < 32768, key
    for port in compose["services"]["temporal"]["ports"]:
        assert int(str(port).rpartition(":")[2]) < 32768, port
    # Enough PostgreSQL connections for four services of 20 + 10 each.
    command = compose["services"]["postgresql"]["command"]
    assert int(next(c for c in command if c.startswith("max_connections=")).split("=")[1]) \
        >= 4 * 30


def test_the_namespace_is_created_once_the_cluster_is_serving(compose: dict[str, Any]) -> None:
    """Issue 23: the frontend's port opens before its services are up, and the server
    image has no CLI for a healthcheck: the namespace job itself waits until `temporal
    operator cluster health` says SERVING (as devtools/cluster.py does), then creates it."""
    job = compose["services"]["temporal-namespace"]
    line = " ".join(job["entrypoint"])
    assert "temporal operator cluster health" in line and "SERVING" in line
    assert line.index("cluster health") < line.index("create-namespace.sh")
    assert job["depends_on"]["temporal"] == {"condition": "service_healthy"}
    # What reads or starts offboardings comes after setup, which comes after the namespace.
    assert compose["services"]["setup"]["depends_on"]["temporal-namespace"] == {
        "condition": "service_completed_successfully"}


def test_prometheus_scrapes_the_server_as_well_as_the_workers(compose: dict[str, Any]) -> None:
    """Issue 23: only the workers were scraped; the server's metrics (shard, persistence
    and task-queue latencies) were not even served."""
    endpoint = compose["services"]["temporal"]["environment"]["PROMETHEUS_ENDPOINT"]
    port = endpoint.rpartition(":")[2]
    config = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", [])
               for t in sc["targets"]]
    assert f"temporal:{port}" in targets, targets
    assert any(job.get("dns_sd_configs") for job in config["scrape_configs"]), "workers too"


def test_tracing_runs_on_jaeger_2(compose: dict[str, Any]) -> None:
    """Issue 23: jaegertracing/all-in-one is Jaeger 1, past its end of life. Jaeger 2's
    image needs no config file for this (its all-in-one default, OTLP on 4318)."""
    image = compose["services"]["jaeger"]["image"]
    name, _, tag = image.rpartition(":")
    assert name == "jaegertracing/jaeger" and int(tag.split(".")[0]) >= 2, image
    assert "command" not in compose["services"]["jaeger"]


def test_no_secret_is_on_a_command_line(compose: dict[str, Any]) -> None:
    """Issue 20: the codec server's token was a flag, shown by ``ps`` to every user of the
    host. Secrets reach a process through its environment (or a file)."""
    secret = re.compile(r"\$\{?[A-Z_]*(TOKEN|PASSWORD|SECRET|KEYS?)\b|--token\b")
    for name, service in compose["services"].items():
        for key in ("command", "entrypoint"):
            value = service.get(key) or []
            line = " ".join(value) if isinstance(value, list) else str(value)
            if name == "minio-bucket":  # a one-shot container: `mc alias set` takes them
                continue
            assert not secret.search(line), f"{name}'s {key} holds a secret: {line}"
    codec = compose["services"]["codec-server"]
    assert TOKEN_ENV in codec["environment"]


def test_the_image_copies_every_module_the_worker_imports() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (.+) \./", dockerfile, re.M))
    copied_names = {Path(name).name for line in copied for name in line.split()}
    # What the worker and the CLI really import, from this repository.
    probe = ("import sys, worker, starter, offboarding.worker, offboarding.cli.main, "
             "offboarding.security.codec_server, offboarding.portal.main; "
             "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    ours = {name for name in out if (ROOT / name).is_dir() or (ROOT / f"{name}.py").exists()}
    needed = {name if (ROOT / name).is_dir() else f"{name}.py" for name in ours}
    assert needed, "the probe found the project's modules"
    assert needed <= copied_names, needed - copied_names


def test_the_compose_server_gets_the_dynamic_config_every_dev_server_gets(
    compose: dict[str, Any],
) -> None:
    server = compose["services"]["temporal"]
    mounts = dict(reversed(volume.split(":")[:2]) for volume in server["volumes"])
    target = "/etc/temporal/" + server["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert target in mounts, f"{target} is not mounted into the server"
    config = yaml.safe_load((ROOT / mounts[target]).read_text())
    assert {key: str(values[0]["value"]).lower() for key, values in config.items()} \
        == temporal_server.DYNAMIC_CONFIG


def test_the_package_builds_from_what_the_image_copies_and_starts(tmp_path: Path) -> None:
    """Issue 10, row 17: pyproject listed a package the Dockerfile did not copy, so the
    image did not build. Here the package is built from exactly the files the Dockerfile
    copies, installed in a fresh environment, and the worker and CLI start."""
    context = tmp_path / "context"
    context.mkdir()
    for line in re.findall(r"^COPY (.+)$", (ROOT / "Dockerfile").read_text(), re.M):
        *sources, dest = line.split()
        for source in sources:
            target = context / (source if dest == "./" else dest.removeprefix("./"))
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns(
                    "__pycache__"))
            else:
                shutil.copy2(ROOT / source, target)
    dist = tmp_path / "dist"
    # With build isolation: the build backend comes from the registry, as in the image.
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(dist), str(context)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    runtime = [line for line in metadata.splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert runtime and not [r for r in runtime if "aiosmtpd" in r or "pytest" in r], runtime
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    # The dependencies come from the test's environment (a plain path: its .pth files,
    # which include this checkout's editable install, are not processed).
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages")
    (site / "deps.pth").write_text(f"{deps}\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with zipfile.ZipFile(wheel) as zf:
        tops = {n.split("/")[0] for n in zf.namelist() if ".dist-info" not in n}
    assert tops == {"offboarding"}, f"the wheel installs more than one package: {tops}"
    for command in ("offboarding", "offboarding-worker", "offboarding-portal"):
        started = subprocess.run([str(fresh / "bin" / command), "--help"], cwd=elsewhere,
                                 capture_output=True, text=True, timeout=60,
                                 env={"PATH": os.environ["PATH"]})
        assert started.returncode == 0, started.stderr[-2000:]
        assert "usage:" in started.stdout
    where = subprocess.run([str(python), "-c", "import offboarding; print(offboarding.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True).stdout
    assert where.startswith(str(fresh)), f"offboarding was imported from {where}"
    templates = subprocess.run(
        [str(python), "-c", "from importlib.resources import files; print(sorted(p.name for p in "
         "files('offboarding.activities.templates').iterdir()))"],
        cwd=elsewhere, capture_output=True, text=True).stdout
    assert "farewell.txt" in templates, templates
    pages = subprocess.run(
        [str(python), "-c", "from importlib.resources import files; print(sorted(p.name for p in "
         "files('offboarding.portal.templates').iterdir()))"],
        cwd=elsewhere, capture_output=True, text=True).stdout
    assert "decide.html" in pages, pages
