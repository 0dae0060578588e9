#!/usr/bin/env bash
# Prints two lines: the path of Temporal's Web UI server (`temporal-ui-server`, what the
# temporalio/ui image runs) and the path of the `docker.yaml` it is run with (the image's
# own config, copied from the module; every setting from TEMPORAL_* variables:
# TEMPORAL_ADDRESS, TEMPORAL_UI_PORT, TEMPORAL_CODEC_ENDPOINT, TEMPORAL_CORS_ORIGINS, ...).
# Built once with `go install` of the pinned tag into the cache, never the repo: about a
# minute once the CLI's modules are in Go's module cache.
# Order: $TEMPORAL_UI_SERVER and $TEMPORAL_UI_CONFIG if both set; the cached build; go install.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/cache-dir.sh"
TEMPORAL_UI_VERSION="${TEMPORAL_UI_VERSION:-v2.42.1}"
module="github.com/temporalio/ui-server/v2"

if [[ -n "${TEMPORAL_UI_SERVER:-}" || -n "${TEMPORAL_UI_CONFIG:-}" ]]; then
  [[ -x "${TEMPORAL_UI_SERVER:-}" && -f "${TEMPORAL_UI_CONFIG:-}" ]] \
    || { echo "set TEMPORAL_UI_SERVER to an executable and TEMPORAL_UI_CONFIG to its docker.yaml" >&2; exit 1; }
  echo "$TEMPORAL_UI_SERVER"; echo "$TEMPORAL_UI_CONFIG"; exit 0
fi

dir="$OFFBOARDING_CACHE/temporal-ui-$TEMPORAL_UI_VERSION"
target="$dir/temporal-ui-server"
config="$dir/config/docker.yaml"
if [[ -x "$target" && -f "$config" ]]; then echo "$target"; echo "$config"; exit 0; fi
command -v go >/dev/null || { echo "no Go toolchain: cannot build the Temporal UI server $TEMPORAL_UI_VERSION (install Go, or set TEMPORAL_UI_SERVER and TEMPORAL_UI_CONFIG)" >&2; exit 1; }

mkdir -p "$dir/config"
tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "building the Temporal UI server $TEMPORAL_UI_VERSION with go install (once; about a minute)..." >&2
GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$module/cmd/server@$TEMPORAL_UI_VERSION" >&2
mv "$tmp/server" "$target"
echo "built temporal-ui-server in $((SECONDS - start)) s" >&2
# The config the image runs with, from the module go install just fetched.
src="$(go env GOMODCACHE)/$module@$TEMPORAL_UI_VERSION/config/docker.yaml"
[[ -f "$src" ]] || { echo "no $src after go install" >&2; exit 1; }
install -m 0644 "$src" "$config"
echo "$target"
echo "$config"
