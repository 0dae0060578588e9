#!/usr/bin/env bash
# Prints three lines: the paths of `temporal-server` and `temporal-sql-tool` (the cluster of
# devtools/cluster.py), each built once with `go install` of the pinned server tag into the
# cache, never the repo, and the server's schema directory (schema/, whose
# postgresql/v12/{temporal,visibility}/versioned `temporal-sql-tool update-schema` reads),
# copied next to them from the module. v1.30.1 has no `replace` directive and builds with
# the installed Go; later tags want a newer toolchain. Build: 5 minutes for both on 2 cores
# (measured with Go's build cache warm from the CLI's build; ~7 cold).
# Order: $TEMPORAL_SERVER, $TEMPORAL_SQL_TOOL and $TEMPORAL_SCHEMA_DIR if set; the cached
# build; go install. Without Go it fails loudly: no release archive is fetched.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/cache-dir.sh"
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-v1.30.1}"

if [[ -n "${TEMPORAL_SERVER:-}${TEMPORAL_SQL_TOOL:-}${TEMPORAL_SCHEMA_DIR:-}" ]]; then
  [[ -x "${TEMPORAL_SERVER:-}" && -x "${TEMPORAL_SQL_TOOL:-}" && -d "${TEMPORAL_SCHEMA_DIR:-}/postgresql/v12" ]] \
    || { echo "set all of TEMPORAL_SERVER, TEMPORAL_SQL_TOOL (executables) and TEMPORAL_SCHEMA_DIR (with postgresql/v12)" >&2; exit 1; }
  echo "$TEMPORAL_SERVER"; echo "$TEMPORAL_SQL_TOOL"; echo "$TEMPORAL_SCHEMA_DIR"; exit 0
fi

dir="$OFFBOARDING_CACHE/temporal-server-$TEMPORAL_SERVER_VERSION"
server="$dir/temporal-server"
sqltool="$dir/temporal-sql-tool"
schema="$dir/schema"
if [[ -x "$server" && -x "$sqltool" && -d "$schema/postgresql/v12" ]]; then
  echo "$server"; echo "$sqltool"; echo "$schema"; exit 0
fi
command -v go >/dev/null || { echo "no Go toolchain: cannot build temporal-server $TEMPORAL_SERVER_VERSION (install Go, or set TEMPORAL_SERVER and TEMPORAL_SQL_TOOL)" >&2; exit 1; }

# go install names a binary after its package directory (server, sql): build each into its
# own directory, then move it under its real name. A killed build leaves no half binary.
build() {  # build <package> <target>
  local pkg="$1" target="$2" tmp start
  [[ -x "$target" ]] && return 0
  tmp="$(mktemp -d "$dir/.build.XXXXXX")"
  start=$SECONDS
  echo "building $pkg@$TEMPORAL_SERVER_VERSION with go install (once; ~5 minutes on 2 cores for both)..." >&2
  # Progress: go install -v names each package as it compiles it; a count every 30 s.
  ( GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -trimpath" go install -v "$pkg@$TEMPORAL_SERVER_VERSION" 2>"$tmp/log" ) &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && echo "  ... $((SECONDS - start)) s, $(wc -l <"$tmp/log") packages compiled" >&2
  done
  if ! wait "$pid"; then
    tail -n 30 "$tmp/log" >&2
    echo "go install $pkg@$TEMPORAL_SERVER_VERSION failed (log above)" >&2
    rm -rf "$tmp"; exit 1
  fi
  mv "$tmp"/"$(basename "$pkg")" "$target"
  rm -rf "$tmp"
  echo "built $(basename "$target") in $((SECONDS - start)) s" >&2
}

mkdir -p "$dir"
build go.temporal.io/server/cmd/server "$server"
build go.temporal.io/server/cmd/tools/sql "$sqltool"
if [[ ! -d "$schema/postgresql/v12" ]]; then
  # The module's directory (downloaded if Go's module cache was cleaned since the build).
  module="$(go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" \
            | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$module/schema/postgresql/v12" ]] || { echo "no schema/postgresql/v12 in the module at '$module'" >&2; exit 1; }
  rm -rf "$schema.tmp" && mkdir -p "$schema.tmp"
  cp -R "$module/schema/postgresql" "$schema.tmp/" && chmod -R u+w "$schema.tmp"
  mv "$schema.tmp" "$schema"
fi
echo "$server"
echo "$sqltool"
echo "$schema"
