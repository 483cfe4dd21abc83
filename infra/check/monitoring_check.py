#!/usr/bin/env python3
"""Checks of infra/monitoring that promtool alone does not do.

    monitoring_check.py --dashboard DASHBOARD.json --rules ALERTS.yaml --emit-rules OUT.yaml

- The Grafana dashboard is JSON with the fields Grafana needs (title, uid, panels with unique
  ids and grid positions, a Prometheus query in every target).
- Every metric the dashboard and the alert rules name is one zipfleet exports (a typo in a
  metric name is valid PromQL and would only show as an empty panel or a silent alert).
- OUT.yaml receives every dashboard query as a recording rule (Grafana's variables replaced
  by plain values), so that `promtool check rules OUT.yaml` parses each query with
  Prometheus' own parser.
"""

import argparse
import json
import re
import sys

import yaml

# What the API and the workers export (README "Deploy", the metrics of the contract).
METRICS = {
    # API (fleet-wide, from the status store, and the broker's queue depths)
    "zipfleet_api_jobs_accepted_total",
    "zipfleet_queue_depth",
    "zipfleet_queue_in_flight",
    "zipfleet_dead_letter_depth",
    "zipfleet_jobs_total",
    "zipfleet_job_duration_seconds",
    "zipfleet_image_duration_seconds",
    # API, fair share (issue 22): zipfleet_queue_depth is the sum over the lanes; per lane
    # (label lane="0".."N-1", bounded by ZIPFLEET_FAIR_LANES), tenants with queued jobs, the
    # oldest queued job's wait. No per-tenant label: tenants are an unbounded set.
    "zipfleet_queue_lane_depth",
    "zipfleet_tenants_waiting",
    "zipfleet_oldest_wait_seconds",
    # workers, fair share: how each job was taken (decision="fair" | "sweep")
    "zipfleet_fair_dispatch_total",
    # workers
    "zipfleet_worker_jobs_running",
    "zipfleet_worker_ready",
    "zipfleet_worker_memory_budget_bytes",
    "zipfleet_worker_memory_budget_used_bytes",
    "zipfleet_worker_images_total",
    "zipfleet_worker_download_bytes_total",
    "zipfleet_worker_stage_seconds_total",
    "zipfleet_worker_jobs_finished_total",
    "zipfleet_worker_cache_hits_total",
    "zipfleet_worker_cache_misses_total",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


def metric_names(expr):
    # Identifiers that start with zipfleet_ are metric names (label names never do here).
    return set(re.findall(r"\bzipfleet_[a-zA-Z0-9_]*", expr))


def known(name):
    if name in METRICS:
        return True
    return any(name.endswith(s) and name[: -len(s)] in METRICS for s in HISTOGRAM_SUFFIXES)


def substitute(expr, variables):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    for name, value in variables.items():
        expr = expr.replace("${%s}" % name, value).replace("$" + name, value)
    return expr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--emit-rules", required=True)
    args = ap.parse_args()
    errors = []

    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"{args.dashboard}: not valid JSON: {e}")
        return 1
    for field in ("title", "uid", "panels", "schemaVersion"):
        if field not in dash:
            errors.append(f"{args.dashboard}: missing {field!r}")
    variables = {}
    for v in (dash.get("templating") or {}).get("list") or []:
        value = (v.get("current") or {}).get("value") or v.get("query") or ".*"
        variables[v.get("name", "")] = str(value) if v.get("type") != "datasource" else "prom"
    ids = set()
    rules = []
    for panel in dash.get("panels") or []:
        pid = panel.get("id")
        where = f"{args.dashboard}: panel {pid} {panel.get('title')!r}"
        if pid in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(pid)
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(k), int) for k in ("x", "y", "w", "h")):
            errors.append(f"{where}: gridPos needs integer x, y, w, h")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            errors.append(f"{where}: no query")
        for t in targets:
            expr = t.get("expr")
            if not expr:
                errors.append(f"{where}: target {t.get('refId')} has no expr")
                continue
            for name in sorted(metric_names(expr)):
                if not known(name):
                    errors.append(f"{where}: unknown metric {name}")
            rules.append({"record": f"dashboard:panel_{pid}_{t.get('refId', 'A').lower()}",
                          "expr": substitute(expr, variables)})

    with open(args.rules, encoding="utf-8") as f:
        alert_doc = yaml.safe_load(f)
    for group in (alert_doc or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            for name in sorted(metric_names(str(rule.get("expr", "")))):
                if not known(name):
                    errors.append(f"{args.rules}: {rule.get('alert') or rule.get('record')}: "
                                  f"unknown metric {name}")

    with open(args.emit_rules, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f,
                       sort_keys=False)
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"monitoring_check: {len(ids)} panels, {len(rules)} queries, metric names known")
    return 0


if __name__ == "__main__":
    sys.exit(main())
