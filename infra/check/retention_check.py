#!/usr/bin/env python3
"""Retention: the bucket's lifecycle rules are stated once and every kit applies them.

    retention_check.py --lifecycle infra/lifecycle.json [--terraform-state STATE.json]
                       [--compose infra/compose.yaml] [--rendered RENDERED.yaml...]

- infra/lifecycle.json (an S3 lifecycle configuration, as `aws s3api
  put-bucket-lifecycle-configuration` takes it) has what the contract asks: zips/, cache/
  and specs/ expire, and for the whole bucket noncurrent versions expire and unfinished
  multipart uploads are aborted.
- Terraform's aws_s3_bucket_lifecycle_configuration, as Terraform evaluates it with the
  variables' defaults (the state of infra/check/terraform/evaluate.tftest.hcl's run), is
  exactly those rules.
- compose's bucket init applies that very file, and the rules' prefixes are where the
  compose fleet, the Kubernetes manifests and the ECS tasks write (their ZIPFLEET_STORE).

Exit status 1 with one line per problem.
"""

import argparse
import json
import os
import sys

import yaml

import tf_state

KINDS = ("zips/", "cache/", "specs/")


def normalize_json_rule(rule):
    flt = rule.get("Filter")
    if flt is None:
        prefix = rule.get("Prefix", "")
    else:
        if set(flt) - {"Prefix"}:
            raise ValueError(f"rule {rule.get('ID')}: only prefix filters are used here, got {flt}")
        prefix = flt.get("Prefix", "")
    expiration = rule.get("Expiration") or {}
    return {
        "status": rule.get("Status"),
        "prefix": prefix,
        "expiration_days": expiration.get("Days"),
        "expired_object_delete_marker": expiration.get("ExpiredObjectDeleteMarker"),
        "noncurrent_days": (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays"),
        "abort_days": (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
    }


def first(blocks):
    return (blocks or [{}])[0] or {}


def normalize_tf_rule(rule):
    flt = first(rule.get("filter"))
    if flt.get("and") or flt.get("tag") or flt.get("object_size_greater_than") or flt.get("object_size_less_than"):
        raise ValueError(f"rule {rule.get('id')}: only prefix filters are used here")
    expiration = first(rule.get("expiration"))
    return {
        "status": rule.get("status"),
        "prefix": flt.get("prefix") or "",
        "expiration_days": expiration.get("days") or None,
        "expired_object_delete_marker": expiration.get("expired_object_delete_marker") or None,
        "noncurrent_days": first(rule.get("noncurrent_version_expiration")).get("noncurrent_days"),
        "abort_days": first(rule.get("abort_incomplete_multipart_upload")).get("days_after_initiation"),
    }


def check_document(path, errors):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if set(doc) != {"Rules"}:
        errors.append(f"{path}: expected an object with only \"Rules\" (the S3 API's lifecycle "
                      f"configuration), got keys {sorted(doc)}")
    rules = {}
    for rule in doc.get("Rules") or []:
        try:
            rules[rule.get("ID")] = normalize_json_rule(rule)
        except ValueError as e:
            errors.append(f"{path}: {e}")
    enabled = [r for r in rules.values() if r["status"] == "Enabled"]
    prefixes = {r["prefix"] for r in enabled if r["expiration_days"]}
    for kind in KINDS:
        if not any(p.endswith("/" + kind) or p == kind for p in prefixes):
            errors.append(f"{path}: no enabled rule expires PREFIX/{kind}")
    whole = [r for r in enabled if r["prefix"] == ""]
    if not any(r["noncurrent_days"] for r in whole):
        errors.append(f"{path}: no rule for the whole bucket expires noncurrent versions "
                      "(an erased zip's old versions would stay)")
    if not any(r["abort_days"] for r in whole):
        errors.append(f"{path}: no rule for the whole bucket aborts unfinished multipart uploads")
    return rules


def store_prefix(store_url):
    # s3://BUCKET/PREFIX -> "PREFIX/"
    rest = store_url.split("://", 1)[-1]
    _, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def check_prefixes(where, store_url, rules, errors):
    prefix = store_prefix(store_url)
    for kind in KINDS:
        if not any(r["prefix"] == prefix + kind for r in rules.values()):
            errors.append(f"{where}: zipfleet writes under {store_url} but no lifecycle rule "
                          f"covers {prefix}{kind}")


def check_terraform(path, rules, errors):
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    configs = tf_state.of_type(state, "aws_s3_bucket_lifecycle_configuration")
    if len(configs) != 1:
        errors.append(f"terraform: expected one aws_s3_bucket_lifecycle_configuration, found {len(configs)}")
        return
    tf_rules = {}
    for rule in configs[0]["values"].get("rule") or []:
        try:
            tf_rules[rule.get("id")] = normalize_tf_rule(rule)
        except ValueError as e:
            errors.append(f"terraform: {e}")
    for rid in sorted(set(rules) | set(tf_rules)):
        mine, theirs = rules.get(rid), tf_rules.get(rid)
        if mine is None:
            errors.append(f"terraform: rule {rid!r} is not in infra/lifecycle.json")
        elif theirs is None:
            errors.append(f"terraform: infra/lifecycle.json's rule {rid!r} is missing")
        else:
            for key in mine:
                if mine[key] != theirs[key]:
                    errors.append(f"terraform: rule {rid!r}: {key} is {theirs[key]!r} with the "
                                  f"variables' defaults, infra/lifecycle.json says {mine[key]!r}")
    for task in tf_state.of_type(state, "aws_ecs_task_definition"):
        env = {e["name"]: e["value"] for e in json.loads(task["values"]["container_definitions"])[0].get("environment") or []}
        if "ZIPFLEET_STORE" in env:
            check_prefixes(f"terraform: {task['address']}", env["ZIPFLEET_STORE"], rules, errors)


def check_compose(path, lifecycle_path, rules, errors):
    with open(path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    base = os.path.dirname(os.path.abspath(path))
    sources = {name: os.path.normpath(os.path.join(base, c.get("file", "")))
               for name, c in (compose.get("configs") or {}).items() if c.get("file")}
    want = os.path.normpath(os.path.abspath(lifecycle_path))
    applying = []
    for name, svc in (compose.get("services") or {}).items():
        mounted = {c["source"]: c.get("target") for c in svc.get("configs") or [] if isinstance(c, dict)}
        for source, target in mounted.items():
            command = " ".join(svc.get("command") or []) if isinstance(svc.get("command"), list) else str(svc.get("command") or "")
            if sources.get(source) == want and target and "put-bucket-lifecycle-configuration" in command \
                    and f"file://{target}" in command:
                applying.append(name)
    if not applying:
        errors.append(f"{path}: no service applies {lifecycle_path} with put-bucket-lifecycle-configuration")
    env_anchor = None
    for svc in (compose.get("services") or {}).values():
        env = svc.get("environment") or {}
        if isinstance(env, dict) and "ZIPFLEET_STORE" in env:
            env_anchor = env["ZIPFLEET_STORE"]
    if env_anchor:
        check_prefixes(path, env_anchor, rules, errors)


def check_rendered(path, rules, errors):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for d in docs:
        if d.get("kind") == "ConfigMap" and "ZIPFLEET_STORE" in (d.get("data") or {}):
            check_prefixes(f"{path}: ConfigMap {d['metadata']['name']}", d["data"]["ZIPFLEET_STORE"],
                           rules, errors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lifecycle", required=True)
    ap.add_argument("--terraform-state")
    ap.add_argument("--compose")
    ap.add_argument("--rendered", nargs="*", default=[])
    args = ap.parse_args()
    errors = []
    rules = check_document(args.lifecycle, errors)
    if args.terraform_state:
        check_terraform(args.terraform_state, rules, errors)
    if args.compose:
        check_compose(args.compose, args.lifecycle, rules, errors)
    for path in args.rendered:
        check_rendered(path, rules, errors)
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"retention_check: {len(rules)} lifecycle rules in {args.lifecycle}"
          + (", identical in Terraform" if args.terraform_state else "")
          + (", applied by compose" if args.compose else "")
          + ("; every kit writes under their prefixes" if args.compose or args.rendered or args.terraform_state else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
