# Sourced by the other scripts: one cache outside the repo for binaries and jars,
# so a fresh clone reuses what an earlier run built and nothing big is committed.
OFFBOARDING_CACHE="${OFFBOARDING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/client-offboarding}"
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
TEMPORAL_TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.35.0}"
mkdir -p "$OFFBOARDING_CACHE"
