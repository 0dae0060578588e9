#!/usr/bin/env bash
# Prints the path of a `temporal` CLI (the dev server), obtaining it once if needed.
# Order: $TEMPORAL_CLI if set; the cached build; a `temporal` on PATH; `go install`
# of the pinned tag (later tags carry a `replace` directive and cannot be go-installed);
# without Go, the official release archive (needs internet).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/cache-dir.sh"

if [[ -n "${TEMPORAL_CLI:-}" ]]; then
  [[ -x "$TEMPORAL_CLI" ]] || { echo "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable file" >&2; exit 1; }
  echo "$TEMPORAL_CLI"; exit 0
fi

target="$OFFBOARDING_CACHE/temporal-cli-$TEMPORAL_CLI_VERSION/temporal"
if [[ -x "$target" ]]; then echo "$target"; exit 0; fi
if on_path="$(command -v temporal)"; then echo "$on_path"; exit 0; fi

mkdir -p "$(dirname "$target")"
if command -v go >/dev/null; then
  echo "building the Temporal CLI $TEMPORAL_CLI_VERSION with go install (once; a few minutes)..." >&2
  GOBIN="$(dirname "$target")" GOFLAGS="${GOFLAGS:-} -trimpath" \
    go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" >&2
else
  echo "no Go toolchain: downloading the Temporal CLI $TEMPORAL_CLI_VERSION release..." >&2
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  arch="$(uname -m)"; case "$arch" in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
  v="${TEMPORAL_CLI_VERSION#v}"
  curl -fsSL "https://temporal.download/cli/archive/v$v?platform=$os&arch=$arch" \
    | tar -xz -C "$(dirname "$target")" temporal
fi
[[ -x "$target" ]] || { echo "the Temporal CLI was not produced at $target" >&2; exit 1; }
echo "$target"
