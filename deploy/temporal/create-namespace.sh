#!/bin/sh
# Run once by the `temporal-namespace` service after the server is healthy: creates the
# namespace the workers use (TEMPORAL_NAMESPACE), with a retention for closed workflows.
# The search attributes are registered next by the `setup` service, from the code.
# Also run outside Docker by devtools/cluster.py, with `temporal` (the CLI) on PATH.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
address="${TEMPORAL_ADDRESS:-temporal:7233}"
if temporal operator namespace describe -n "$ns" --address "$address" >/dev/null 2>&1; then
  echo "namespace $ns exists"
else
  temporal operator namespace create -n "$ns" --retention "${NAMESPACE_RETENTION:-30d}" \
    --address "$address"
fi
