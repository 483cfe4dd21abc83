#!/usr/bin/env bash
# The API as an integrator meets it: starts zipfleet-api and one
# zipfleet-worker (target/debug, so `cargo build --workspace --bins` first) on
# free ports against RabbitMQ, Redis and S3 (SeaweedFS), then
#   1. schemathesis (pinned below) against GET /openapi.json: every check,
#      the examples, coverage, fuzzing and stateful phases (the stateful phase
#      follows the document's links from POST /v1/jobs to GET/DELETE
#      /v1/jobs/{id}); zero failures, no 5xx;
#   2. the TypeScript client's tests (clients/typescript) against the same API.
# Called by infra/test.sh after `cargo test`; on its own it starts the
# services itself (infra/services.sh). Logs: target/api-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ZIPFLEET_TEST_AMQP:-}" ]; then
  # shellcheck source=infra/services.sh
  source infra/services.sh
fi
SCHEMATHESIS_VERSION=4.32.5
repo="$PWD"
work="$repo/target/api-check"
mkdir -p "$work"
started_at=$(date +%s)
say() { echo "== api-check: $*"; }

for binary in zipfleet-api zipfleet-worker; do
  [ -x "target/debug/$binary" ] || { echo "target/debug/$binary is missing: run cargo build --workspace --bins" >&2; exit 1; }
done

# Every check runs but one: use_after_free expects a DELETEd resource to be
# gone, and DELETE /v1/jobs/{id} cancels a job, whose status document stays
# readable (state "cancelled"), as the contract says. The API is right.
# (infra/schemathesis.toml says the same; infra/schemathesis_hooks.py tells
# the generator the one spec rule JSON Schema cannot state.)

# schemathesis in a virtualenv of its own, pinned.
venv="$work/venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
unique="$(date +%s)-$$"
export ZIPFLEET_BROKER="$ZIPFLEET_TEST_AMQP"
export ZIPFLEET_JOBS_QUEUE="zipfleet.apicheck.jobs.$unique"
export ZIPFLEET_COMPLETED_QUEUE="zipfleet.apicheck.completed.$unique"
export ZIPFLEET_DEAD_LETTER_QUEUE="zipfleet.apicheck.dlq.$unique"
export ZIPFLEET_STORE="s3://${ZIPFLEET_TEST_BUCKET}/api-check-$unique"
export ZIPFLEET_STATUS="$ZIPFLEET_TEST_REDIS"
export ZIPFLEET_LISTEN="127.0.0.1:$api_port"
export ZIPFLEET_API_TOKEN="api-check-$unique"
# A deployment limit the served document states (maxItems): keeps the
# coverage phase's largest generated specs small.
export ZIPFLEET_MAX_IMAGES=50
export ZIPFLEET_MAX_BODY_BYTES=1MiB
export ZIPFLEET_WORKER_LISTEN=off
# The client's tests serve their image from loopback.
export ZIPFLEET_ALLOWED_SOURCE_NETS=127.0.0.1/32
export ZIPFLEET_CONNECT_TIMEOUT=2s ZIPFLEET_DOWNLOAD_TIMEOUT=5s ZIPFLEET_SHUTDOWN_GRACE=2s
export RUST_LOG=warn

pids=()
stop_fleet() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  rabbitmqctl -q delete_queue "$ZIPFLEET_JOBS_QUEUE" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$ZIPFLEET_COMPLETED_QUEUE" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$ZIPFLEET_DEAD_LETTER_QUEUE" >/dev/null 2>&1 || true
}
# Chain onto infra/services.sh's EXIT trap, if any, rather than replace it.
previous_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT$//")
trap "stop_fleet; ${previous_trap:-:}" EXIT

target/debug/zipfleet-api >"$work/api.log" 2>&1 & pids+=($!)
target/debug/zipfleet-worker >"$work/worker.log" 2>&1 & pids+=($!)
api="http://127.0.0.1:$api_port"
for _ in $(seq 1 60); do
  curl -sf -o /dev/null "$api/readyz" && break
  sleep 0.5
done
curl -sf -o /dev/null "$api/readyz" || { echo "the API did not become ready; see $work/api.log" >&2; exit 1; }
say "API on $api"

say "schemathesis $SCHEMATHESIS_VERSION"
st_started=$(date +%s)
# (Run from target/api-check: schemathesis keeps its replay data in the working directory.)
(cd "$work" && PYTHONPATH="$repo/infra" SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$venv/bin/st" --config-file "$repo/infra/schemathesis.toml" run "$api/openapi.json" \
  --header "Authorization: Bearer $ZIPFLEET_API_TOKEN" \
  --checks all \
  --exclude-checks use_after_free \
  --phases examples,coverage,fuzzing,stateful \
  --seed "${ZIPFLEET_API_CHECK_SEED:-20261201}" \
  --report junit --report-junit-path "$work/schemathesis-junit.xml" \
  2>&1; echo "exit $?" >"$work/schemathesis.status") | tee "$work/schemathesis.log"
st_status=$(sed 's/exit //' "$work/schemathesis.status")
say "schemathesis took $(( $(date +%s) - st_started )) s"
[ "$st_status" -eq 0 ] || { echo "schemathesis found failures (see $work/schemathesis.log)" >&2; exit "$st_status"; }

# The fuzzed jobs would keep the worker busy for a while: drop them, so the
# client's jobs run at once.
rabbitmqctl -q purge_queue "$ZIPFLEET_JOBS_QUEUE" >/dev/null

if [ -f clients/typescript/package.json ]; then
  say "TypeScript client"
  ( cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run build && \
    ZIPFLEET_API_URL="$api" ZIPFLEET_API_TOKEN="$ZIPFLEET_API_TOKEN" npm test )
fi
say "done in $(( $(date +%s) - started_at )) s"
