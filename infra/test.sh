#!/usr/bin/env bash
# zipfleet's test command. Starts the services the tests need if they are not
# running (RabbitMQ, Redis, SeaweedFS for S3, moto's server for SQS —
# installing them on a fresh Debian/Ubuntu machine), checks formatting and
# lints (rustfmt, clippy with warnings as errors), runs every test of the
# workspace against the services, and stops what it started.
#   infra/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=infra/services.sh
source infra/services.sh

log "zipfleet tests: $(date -u +%FT%TZ)"
# The browser tests (ui-tests/) drive Debian's Chromium: installed up front, so
# a machine without it fails now, not after the build.
[ -x "${ZIPFLEET_CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium
# Style first (seconds).
cargo fmt --all -- --check

# Lint and build in one pass. `cargo clippy` type-checks every dependency
# again (check-mode artifacts are not build artifacts), which cost minutes;
# instead clippy's driver compiles the workspace's own crates while the
# dependencies are built once, by rustc, for the build and the tests alike.
# This is how `cargo clippy` itself runs the driver (RUSTC_WORKSPACE_WRAPPER,
# its arguments in CLIPPY_ARGS); every lint is an error.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver || true)"
[ -x "$clippy_driver" ] || { echo "clippy-driver not found (rustup component add clippy)" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
timed "lint and build (workspace, all targets)" cargo build --workspace --all-targets --locked
# Two test binaries (tests/it in parallel, tests/disruptive one at a time)
# and each crate's unit tests; the binaries the tests start were built above.
timed "tests" cargo test --workspace --locked --no-fail-fast "$@"
# The operator page in Debian's headless Chromium (playwright-core, node:test)
# against the real API and a worker built above; about 40 s.
timed "ui-tests (browser)" ui-tests/run.sh
# The API fuzzed by schemathesis (its OpenAPI document, links followed) and the TypeScript client against a live API.
timed "api-check" bash infra/api-check.sh
# Then every deployment artifact (image, compose, Kubernetes + KEDA, Terraform, monitoring).
timed "infra/check.sh" infra/check.sh
log "timings:"; printf '   %s\n' "${timings[@]}"
