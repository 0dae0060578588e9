#!/usr/bin/env bash
# Prints the path of an executable that starts Temporal's time-skipping test server
# (`<path> <port>`), as WorkflowEnvironment.start_time_skipping(test_server_existing_path=...)
# expects. The Java test server and its dependencies are resolved by Maven once into the cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/cache-dir.sh"

dir="$OFFBOARDING_CACHE/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"
wrapper="$dir/temporal-test-server"
if [[ -x "$wrapper" ]]; then echo "$wrapper"; exit 0; fi

command -v mvn >/dev/null || { echo "Maven (mvn) and a Java 17+ runtime are needed for the test server" >&2; exit 1; }
echo "resolving io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION with Maven (once)..." >&2
rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/jars"
mvn -q -B -f "$here/../tools/test-server/pom.xml" \
  -Dtemporal.test-server.version="$TEMPORAL_TEST_SERVER_VERSION" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir.tmp/jars" >&2
cat > "$dir.tmp/temporal-test-server" <<'WRAP'
#!/usr/bin/env bash
# Starts Temporal's Java time-skipping test server: temporal-test-server <port> [args]
exec java ${TEMPORAL_TEST_SERVER_JAVA_OPTS:--Xss1m -XX:+UseSerialGC} \
  -cp "$(dirname "$0")/jars/*" io.temporal.testserver.TestServer "$@"
WRAP
chmod +x "$dir.tmp/temporal-test-server"
rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "$wrapper"
