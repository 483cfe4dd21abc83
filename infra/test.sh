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
# Style first (seconds): formatting, then every lint as an error.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
bash infra/api-check.sh  # the API fuzzed by schemathesis (its OpenAPI document, links followed) and the TypeScript client against a live API
# Then every deployment artifact (image, compose, Kubernetes + KEDA, Terraform, monitoring).
infra/check.sh
