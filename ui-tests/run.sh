#!/usr/bin/env bash
# Browser tests of the operator page (/ui/): installs the pinned
# playwright-core (npm ci), checks for Debian's Chromium and Node.js 20+,
# and runs test/*.test.mjs with node:test against the real zipfleet-api and
# zipfleet-worker in target/debug (build them first), RabbitMQ, Redis and
# SeaweedFS (infra/test.sh starts them; see infra/services.sh).
#   ui-tests/run.sh                 # the tests
#   ui-tests/run.sh --screenshots   # the same, also writing docs/ui/*.png
set -euo pipefail
cd "$(dirname "$0")"

chromium="${ZIPFLEET_CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || { echo "ui-tests: $chromium is missing (apt-get install chromium)" >&2; exit 1; }
command -v node >/dev/null || { echo "ui-tests: Node.js 20 or later is required" >&2; exit 1; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || { echo "ui-tests: Node.js 20 or later is required (found $(node --version))" >&2; exit 1; }

# Exactly the locked versions; playwright-core downloads no browser.
npm ci --no-audit --no-fund --prefer-offline --loglevel=error

if [ "${1:-}" = "--screenshots" ]; then
  export ZIPFLEET_UI_SCREENSHOTS=1
fi
exec npm test
