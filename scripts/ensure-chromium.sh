#!/usr/bin/env bash
# Prints the path of a Chromium for the browser test: $CHROMIUM, /usr/bin/chromium, or
# Debian's `chromium` package installed with apt (as root). Never a downloaded browser build.
set -euo pipefail
if [[ -n "${CHROMIUM:-}" ]]; then echo "$CHROMIUM"; exit 0; fi
for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
  if [[ -x "$candidate" ]]; then echo "$candidate"; exit 0; fi
done
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium package (once)..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  echo /usr/bin/chromium; exit 0
fi
echo "no Chromium: install Debian's 'chromium' package (apt-get install chromium) or set CHROMIUM" >&2
exit 1
