#!/usr/bin/env bash
# Fuzz the decode-and-resize path and spec parsing for a bounded time each.
#   infra/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
# Needs cargo-fuzz (installed here if missing). cargo-fuzz wants nightly
# features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them. The decode
# corpus is seeded from the repository's real images and fuzz/seeds (progressive
# JPEGs that take the early-stop path, a lossy WebP that takes the YUV path).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
corpus=target/fuzz-corpus
mkdir -p "$corpus/decode" "$corpus/spec"
cp examples/images/* tests/fixtures/* fuzz/seeds/* "$corpus/decode/"
cp examples/job.json "$corpus/spec/"
for target in decode spec; do
  echo "== fuzzing $target for ${seconds}s"
  (cd fuzz && cargo fuzz run "$target" "../$corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10)
done
echo "== fuzzing finished without findings"
