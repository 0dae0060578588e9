#!/usr/bin/env bash
# Prints the path of the Compose specification's JSON schema, taken once from the
# docker-compose 1.29.2 wheel on PyPI (it ships compose/config/compose_spec.json).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/cache-dir.sh"
target="$OFFBOARDING_CACHE/compose-spec/compose_spec.json"
if [[ -s "$target" ]]; then echo "$target"; exit 0; fi
python="${PYTHON:-$here/../.venv/bin/python}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download -q --no-deps --dest "$tmp" docker-compose==1.29.2 >&2
mkdir -p "$(dirname "$target")"
"$python" - "$tmp"/docker_compose-1.29.2-*.whl "$target" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    data = wheel.read("compose/config/compose_spec.json")
open(sys.argv[2], "wb").write(data)
PY
echo "$target"
