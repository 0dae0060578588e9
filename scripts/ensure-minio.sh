#!/usr/bin/env bash
# Prints the path of a MinIO server (S3-compatible object storage for the tests), building
# it once with `go install` of a pinned module version (about 5 minutes on 2 cores) into
# the cache outside the repo. Order: $MINIO_SERVER if set; the cached build; `go install`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/cache-dir.sh"
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

if [[ -n "${MINIO_SERVER:-}" ]]; then
  [[ -x "$MINIO_SERVER" ]] || { echo "MINIO_SERVER=$MINIO_SERVER is not an executable file" >&2; exit 1; }
  echo "$MINIO_SERVER"; exit 0
fi

target="$OFFBOARDING_CACHE/minio-$MINIO_VERSION/minio"
if [[ -x "$target" ]]; then echo "$target"; exit 0; fi
command -v go >/dev/null || { echo "building MinIO needs a Go toolchain" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
echo "building MinIO $MINIO_VERSION with go install (once; about 5 minutes)..." >&2
GOBIN="$(dirname "$target")" GOFLAGS="${GOFLAGS:-} -trimpath" \
  go install "github.com/minio/minio@$MINIO_VERSION" >&2
[[ -x "$target" ]] || { echo "MinIO was not produced at $target" >&2; exit 1; }
echo "$target"
