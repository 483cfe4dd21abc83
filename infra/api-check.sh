#!/usr/bin/env bash
# The API as an integrator meets it: zipfleet-api and one zipfleet-worker
# (target/debug, so `cargo build --workspace --bins` first) on free ports
# against RabbitMQ, Redis and S3 (SeaweedFS), then
#   1. schemathesis (pinned below) against GET /openapi.json: every check,
#      the examples, coverage, fuzzing and stateful phases (the stateful phase
#      follows the document's links from POST /v1/jobs to GET, cancel and
#      DELETE /v1/jobs/{id}; use_after_free then holds DELETE to its word:
#      an erased job answers 404); zero failures, no 5xx;
#   2. the TypeScript client's tests (clients/typescript) against a second,
#      fresh fleet with a per-tenant quota of 2 (the 429 test), so that no
#      fuzzed job is in the way.
# Each fleet has queues and a status-store prefix of its own, deleted at
# the end. Called by infra/test.sh after `cargo test`; on its own it starts
# the services itself (infra/services.sh). Logs: target/api-check/.
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

# schemathesis in a virtualenv of its own, pinned.
venv="$work/venv"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  say "installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
unique="$(date +%s)-$$"
export ZIPFLEET_BROKER="$ZIPFLEET_TEST_AMQP"
export ZIPFLEET_STATUS="$ZIPFLEET_TEST_REDIS"
export ZIPFLEET_API_TOKEN="api-check-$unique"
# A deployment limit the served document states (maxItems): keeps the
# coverage phase's largest generated specs small.
export ZIPFLEET_MAX_IMAGES=50
export ZIPFLEET_MAX_BODY_BYTES=1MiB
export ZIPFLEET_WORKER_LISTEN=off
# The client's tests serve their images from loopback.
export ZIPFLEET_ALLOWED_SOURCE_NETS=127.0.0.1/32
export ZIPFLEET_CONNECT_TIMEOUT=2s ZIPFLEET_DOWNLOAD_TIMEOUT=5s ZIPFLEET_SHUTDOWN_GRACE=2s
export RUST_LOG=warn

pids=()
prefixes=()
stop_processes() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  pids=()
}
stop_fleets() {
  stop_processes
  # Every queue of these fleets (lanes included) carries $unique in its name.
  # (The list is read first: rabbitmqctl reads standard input, and in a
  # `| while read` loop would swallow the names after the first.)
  local queues=()
  mapfile -t queues < <(timeout 60 rabbitmqctl -q list_queues name 2>/dev/null | grep -F -- "$unique" || true)
  for queue in "${queues[@]}"; do
    timeout 30 rabbitmqctl -q delete_queue "$queue" </dev/null >/dev/null 2>&1 || true
  done
  for prefix in "${prefixes[@]:-}"; do
    [ -n "$prefix" ] || continue
    redis-cli -u "$ZIPFLEET_TEST_REDIS" --scan --pattern "$prefix:*" 2>/dev/null \
      | xargs -r -n 500 redis-cli -u "$ZIPFLEET_TEST_REDIS" del >/dev/null 2>&1 || true
  done
}
# Chain onto infra/services.sh's EXIT trap, if any, rather than replace it.
previous_trap=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT$//")
trap "stop_fleets; ${previous_trap:-:}" EXIT

# start_fleet NAME [VAR=VALUE...]: an API and one worker with queues, a store
# prefix and a status-store prefix of their own; sets $api.
start_fleet() {
  local name="$1"; shift
  local port; port=$(free_port)
  local settings=(
    "ZIPFLEET_JOBS_QUEUE=zipfleet.apicheck.$name.jobs.$unique"
    "ZIPFLEET_COMPLETED_QUEUE=zipfleet.apicheck.$name.completed.$unique"
    "ZIPFLEET_DEAD_LETTER_QUEUE=zipfleet.apicheck.$name.dlq.$unique"
    "ZIPFLEET_STORE=s3://${ZIPFLEET_TEST_BUCKET}/api-check-$name-$unique"
    "ZIPFLEET_STATUS_PREFIX=zipfleet-apicheck-$name-$unique"
    "ZIPFLEET_LISTEN=127.0.0.1:$port"
    "$@"
  )
  prefixes+=("zipfleet-apicheck-$name-$unique")
  env "${settings[@]}" target/debug/zipfleet-api >"$work/$name-api.log" 2>&1 & pids+=($!)
  env "${settings[@]}" target/debug/zipfleet-worker >"$work/$name-worker.log" 2>&1 & pids+=($!)
  api="http://127.0.0.1:$port"
  for _ in $(seq 1 60); do
    curl -sf -o /dev/null "$api/readyz" && break
    sleep 0.5
  done
  curl -sf -o /dev/null "$api/readyz" || { echo "the $name API did not become ready; see $work/$name-api.log" >&2; exit 1; }
  say "$name fleet: API on $api"
}

start_fleet fuzz
say "schemathesis $SCHEMATHESIS_VERSION"
st_started=$(date +%s)
# (Run from target/api-check: schemathesis keeps its replay data in the working directory.)
(cd "$work" && PYTHONPATH="$repo/infra" SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$venv/bin/st" --config-file "$repo/infra/schemathesis.toml" run "$api/openapi.json" \
  --header "Authorization: Bearer $ZIPFLEET_API_TOKEN" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --seed "${ZIPFLEET_API_CHECK_SEED:-20261201}" \
  --report junit --report-junit-path "$work/schemathesis-junit.xml" \
  2>&1; echo "exit $?" >"$work/schemathesis.status") | tee "$work/schemathesis.log"
st_status=$(sed 's/exit //' "$work/schemathesis.status")
say "schemathesis took $(( $(date +%s) - st_started )) s"
[ "$st_status" -eq 0 ] || { echo "schemathesis found failures (see $work/schemathesis.log)" >&2; exit "$st_status"; }
# The stateful phase must have walked every link of the document, or it
# tested less than it says (use_after_free needs a read after an erasure).
links=$(grep -Eo 'API Links: +[0-9]+ covered / [0-9]+ selected / [0-9]+ total' "$work/schemathesis.log" || true)
if ! [[ "$links" =~ ([0-9]+)\ covered\ /\ [0-9]+\ selected\ /\ ([0-9]+)\ total ]] \
  || [ "${BASH_REMATCH[1]}" -eq 0 ] || [ "${BASH_REMATCH[1]}" -ne "${BASH_REMATCH[2]}" ]; then
  echo "the stateful phase did not follow every link (${links:-no links}; see $work/schemathesis.log)" >&2
  exit 1
fi

# The fuzz fleet's worker would go on with the fuzzed jobs: stop it.
stop_processes

if [ -f clients/typescript/package.json ]; then
  # Downloads wait up to a minute: the client's tests hold images back on
  # purpose to keep the worker's slots busy while they fill a tenant's quota.
  start_fleet client ZIPFLEET_MAX_QUEUED_PER_TENANT=2 ZIPFLEET_CONCURRENCY=2 \
    ZIPFLEET_DOWNLOAD_TIMEOUT=60s ZIPFLEET_IDLE_TIMEOUT=60s
  say "TypeScript client"
  client_started=$(date +%s)
  ( cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run build && \
    ZIPFLEET_API_URL="$api" ZIPFLEET_API_TOKEN="$ZIPFLEET_API_TOKEN" ZIPFLEET_WORKER_SLOTS=2 npm test )
  say "the client's tests took $(( $(date +%s) - client_started )) s"
fi
say "done in $(( $(date +%s) - started_at )) s"
