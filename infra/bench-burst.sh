#!/usr/bin/env bash
# The classroom burst (30 jobs x 40 images, half from S3 and half from a local
# HTTP server, 2 worker processes) on the real fleet, with the services started
# as the tests start them.
#   infra/bench-burst.sh CORPUS_DIR [extra zipfleet-bench arguments]
# The corpus comes from tools/corpus/fetch.sh CORPUS_DIR.
set -euo pipefail
corpus="$(cd "${1:?usage: infra/bench-burst.sh CORPUS_DIR}" && pwd)"
shift
cd "$(dirname "$0")/.."
# shellcheck source=infra/services.sh
source infra/services.sh
cargo build --release --bins
target/release/zipfleet-bench --burst --corpus "$corpus" "$@"
