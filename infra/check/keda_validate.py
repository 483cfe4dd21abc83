#!/usr/bin/env python3
"""Strict offline validator for KEDA resources in rendered Kubernetes manifests.

    keda_validate.py --schemas NODE_MODULES [--refs] [--policy] FILE...

1. Schema: every keda.sh object is validated against KEDA's API schema from the npm package
   @kubernetes-models/keda (pinned in infra/check/keda/package-lock.json; infra/check.sh
   installs it into target/check-tools/keda/node_modules, passed with --schemas), by
   infra/check/keda/schema.mjs under Node, strictly, as the API server's strict field
   validation is: a field the schema does not have is an error, so a typo such as
   `minReplicaCout` is caught, not silently dropped.
2. Trigger metadata: the CRD types `metadata` as a free string map, so each trigger type's keys
   are checked here against the parameters KEDA documents (and its scalers parse) for that
   type; an unknown key, a missing required key or a value of the wrong shape is an error.
   TriggerAuthentication parameters are checked the same way for the triggers that use them.
3. --refs: scaleTargetRef names a Deployment and authenticationRef a TriggerAuthentication
   present in the same files, in the ScaledObject's namespace.
4. --policy: zipfleet's own scaling rules, which a valid-but-wrong ScaledObject would break
   (in-flight jobs counted, scale from zero with an activation threshold, a cooldown and a
   scale-down stabilisation window, the target per replica equal to the worker's
   ZIPFLEET_CONCURRENCY, termination grace longer than ZIPFLEET_SHUTDOWN_GRACE), and for the
   fair-share lanes: a RabbitMQ queue regex sums its queues, a scalingModifiers formula has a
   target equal to ZIPFLEET_CONCURRENCY, an activation threshold, and named triggers.
   (Which queues the regex and the formula cover is infra/check/lanes_check.py's job.)

Exit status 1 with one line per problem; 0 with a summary when everything holds.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys

import yaml

# Trigger metadata keys per trigger type, from KEDA's scaler docs (keda.sh/docs/2.x/scalers)
# and the `keda:"name=..."` tags of the scalers' metadata structs (v2.20).
TRIGGERS = {
    "rabbitmq": {
        "metadata": {
            "host", "hostFromEnv", "protocol", "mode", "value", "activationValue",
            "queueName", "vhostName", "queueLength", "useRegex", "pageSize", "operation",
            "timeout", "excludeUnacknowledged", "unsafeSsl", "usernameFromEnv",
            "passwordFromEnv",
        },
        "required": {"queueName"},
        "auth": {
            "host", "protocol", "vhostName", "username", "password", "tls", "ca", "cert",
            "key", "keyPassword", "workloadIdentityResource", "oauthTokenURI", "clientID",
            "clientSecret", "scopes", "endpointParams",
        },
        "enums": {
            "protocol": {"auto", "http", "amqp"},
            "mode": {"QueueLength", "MessageRate", "DeliverGetRate",
                     "PublishedToDeliveredRatio", "ExpectedQueueConsumptionTime"},
            "useRegex": {"true", "false"},
            "excludeUnacknowledged": {"true", "false"},
            "unsafeSsl": {"true", "false"},
            "operation": {"sum", "max", "avg"},
        },
        "numbers": {"value", "activationValue", "queueLength", "pageSize", "timeout"},
        # The connection string must come from somewhere: metadata, env or a TriggerAuthentication.
        "one_of_sources": [("host", "hostFromEnv", "@auth:host")],
    },
    "aws-sqs-queue": {
        "metadata": {
            "queueURL", "queueURLFromEnv", "queueLength", "activationQueueLength",
            "awsRegion", "awsEndpoint", "scaleOnInFlight", "scaleOnDelayed",
            "identityOwner", "awsAccessKeyID", "awsAccessKeyIDFromEnv",
            "awsSecretAccessKeyFromEnv", "awsSessionTokenFromEnv",
        },
        "required": set(),
        "auth": {
            "awsRegion", "awsRoleArn", "awsAccessKeyID", "awsAccessKeyId",
            "awsSecretAccessKey", "awsSessionToken",
        },
        "enums": {
            "scaleOnInFlight": {"true", "false"},
            "scaleOnDelayed": {"true", "false"},
            "identityOwner": {"pod", "operator"},
        },
        "numbers": {"queueLength", "activationQueueLength"},
        "one_of_sources": [("queueURL", "queueURLFromEnv"), ("awsRegion", "@auth:awsRegion")],
    },
}

KEDA_GROUP = "keda.sh"
SCHEMA_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keda", "schema.mjs")


def where(doc, path=""):
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name', '?')}{path}"


def namespace(doc):
    return (doc.get("metadata") or {}).get("namespace") or "default"


def is_number(text):
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def check_schemas(docs, modules, errors):
    """KEDA's API schema, strict (infra/check/keda/schema.mjs under Node). Returns the
    package the schemas came from."""
    if not os.path.isdir(os.path.join(modules, "@kubernetes-models", "keda")):
        raise SystemExit(f"keda_validate: no @kubernetes-models/keda under {modules} "
                         "(infra/check.sh installs it with npm ci)")
    run = subprocess.run(["node", SCHEMA_SCRIPT, modules], input=json.dumps(docs, default=str),
                         capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"keda_validate: {SCHEMA_SCRIPT} failed:\n{run.stderr}")
    result = json.loads(run.stdout)
    for p in result["problems"]:
        path = "".join(f"[{part}]" if part.isdigit() else f".{part}"
                       for part in p["path"].split("/")[1:])
        errors.append(f"{where(docs[p['doc']])}{path}: {p['message']}")
    return result["package"]


def auth_params(auth_doc):
    """Parameter names a TriggerAuthentication provides, from every source kind."""
    spec = (auth_doc or {}).get("spec") or {}
    names = set()
    for source in ("secretTargetRef", "configMapTargetRef", "env", "boundServiceAccountToken"):
        for item in spec.get(source) or []:
            if isinstance(item, dict) and "parameter" in item:
                names.add(item["parameter"])
    for source in ("hashiCorpVault", "azureKeyVault", "gcpSecretManager", "awsSecretManager"):
        block = spec.get(source) or {}
        for item in block.get("secrets") or []:
            if isinstance(item, dict) and "parameter" in item:
                names.add(item["parameter"])
    return names


def check_trigger(doc, index, trigger, auths, errors):
    ttype = trigger.get("type")
    loc = f"{where(doc)}.spec.triggers[{index}]"
    rules = TRIGGERS.get(ttype)
    if rules is None:
        errors.append(f"{loc}: trigger type {ttype!r} is not one this validator knows "
                      f"({', '.join(sorted(TRIGGERS))}); add its documented keys first")
        return
    metadata = trigger.get("metadata") or {}
    for k in sorted(set(metadata) - rules["metadata"]):
        errors.append(f"{loc}.metadata: unknown {ttype} trigger key {k!r}")
    for k in sorted(rules["required"] - set(metadata)):
        errors.append(f"{loc}.metadata: {ttype} trigger requires {k!r}")
    for k, allowed in rules["enums"].items():
        if k in metadata and metadata[k] not in allowed:
            errors.append(f"{loc}.metadata.{k}: {metadata[k]!r} is not one of {sorted(allowed)}")
    for k in rules["numbers"]:
        if k in metadata and not is_number(metadata[k]):
            errors.append(f"{loc}.metadata.{k}: {metadata[k]!r} is not a number")
    ref = (trigger.get("authenticationRef") or {}).get("name")
    provided = set()
    if ref is not None and ref in auths:
        provided = auth_params(auths[ref])
        for p in sorted(provided - rules["auth"]):
            errors.append(f"TriggerAuthentication/{ref}: parameter {p!r} is not one the "
                          f"{ttype} trigger reads (used by {loc})")
    for group in rules["one_of_sources"]:
        found = False
        for source in group:
            if source.startswith("@auth:"):
                found |= source[len("@auth:"):] in provided
            else:
                found |= source in metadata
        if not found and not (ref is not None and ref not in auths):
            names = " or ".join(s.replace("@auth:", "TriggerAuthentication parameter ")
                                for s in group)
            errors.append(f"{loc}: needs {names}")


def containers_env(deployment):
    out = {}
    spec = (((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in spec.get("containers") or []:
        for e in c.get("env") or []:
            if "value" in e:
                out[e["name"]] = str(e["value"])
    return out, spec


def duration_seconds(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


def check_policy(so, deployments, errors):
    loc = where(so)
    spec = so.get("spec") or {}
    if spec.get("minReplicaCount", 0) != 0:
        errors.append(f"{loc}: policy: minReplicaCount must be 0 (scale to zero when idle)")
    if "cooldownPeriod" not in spec:
        errors.append(f"{loc}: policy: set cooldownPeriod (how long idle before scaling to 0)")
    behavior = (((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {})
                .get("behavior") or {})
    if "stabilizationWindowSeconds" not in (behavior.get("scaleDown") or {}):
        errors.append(f"{loc}: policy: set advanced.horizontalPodAutoscalerConfig.behavior."
                      "scaleDown.stabilizationWindowSeconds")
    target = (spec.get("scaleTargetRef") or {}).get("name")
    env, pod = containers_env(deployments.get(target))
    concurrency = env.get("ZIPFLEET_CONCURRENCY", "2")
    for i, t in enumerate(spec.get("triggers") or []):
        md = t.get("metadata") or {}
        tloc = f"{loc}.spec.triggers[{i}]"
        if t.get("type") == "rabbitmq":
            if md.get("protocol") != "http":
                errors.append(f"{tloc}: policy: protocol must be http (only the management "
                              "API counts unacknowledged, i.e. running, jobs)")
            if md.get("mode") != "QueueLength":
                errors.append(f"{tloc}: policy: mode must be QueueLength")
            if md.get("excludeUnacknowledged") == "true":
                errors.append(f"{tloc}: policy: excludeUnacknowledged would scale busy workers away")
            if "activationValue" not in md:
                errors.append(f"{tloc}: policy: set activationValue (the 0 -> 1 threshold)")
            if md.get("useRegex") == "true" and md.get("operation") != "sum":
                errors.append(f"{tloc}: policy: a queueName regex must use operation: sum "
                              "(the fleet works every lane; max or avg would undercount)")
            per_replica = md.get("value")
        elif t.get("type") == "aws-sqs-queue":
            if md.get("scaleOnInFlight") != "true":
                errors.append(f"{tloc}: policy: scaleOnInFlight must be \"true\" (in-flight "
                              "messages are running jobs)")
            if "activationQueueLength" not in md:
                errors.append(f"{tloc}: policy: set activationQueueLength (the 0 -> 1 threshold)")
            per_replica = md.get("queueLength")
        else:
            continue
        if target in deployments and per_replica is not None and is_number(per_replica) \
                and float(per_replica) != float(concurrency):
            errors.append(f"{tloc}: policy: target per replica {per_replica} != the worker's "
                          f"ZIPFLEET_CONCURRENCY {concurrency}")
    modifiers = (spec.get("advanced") or {}).get("scalingModifiers") or {}
    if modifiers.get("formula"):
        check_scaling_modifiers(loc, spec, modifiers, concurrency if target in deployments else None,
                                errors)
    if target in deployments:
        grace = duration_seconds(env.get("ZIPFLEET_SHUTDOWN_GRACE", "30s"))
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        if grace is not None and not tgps > grace:
            errors.append(f"Deployment/{target}: policy: terminationGracePeriodSeconds {tgps} "
                          f"must exceed ZIPFLEET_SHUTDOWN_GRACE ({grace:g} s)")


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_scaling_modifiers(loc, spec, modifiers, concurrency, errors):
    """A composite metric: KEDA compares the formula's value with `target` per replica, so
    the target is the worker's slots, and activation needs its own threshold."""
    for i, t in enumerate(spec.get("triggers") or []):
        name = t.get("name")
        if not name or not IDENTIFIER.fullmatch(name):
            errors.append(f"{loc}.spec.triggers[{i}]: policy: a trigger the formula sums needs a "
                          f"name that is an identifier (got {name!r}; '-' would be a minus)")
    if modifiers.get("metricType", "AverageValue") != "AverageValue":
        errors.append(f"{loc}.spec.advanced.scalingModifiers: policy: metricType must be "
                      "AverageValue (jobs per replica)")
    target = modifiers.get("target")
    if not is_number(target):
        errors.append(f"{loc}.spec.advanced.scalingModifiers: policy: target must be a number, "
                      f"got {target!r}")
    elif concurrency is not None and float(target) != float(concurrency):
        errors.append(f"{loc}.spec.advanced.scalingModifiers: policy: target {target} != the "
                      f"worker's ZIPFLEET_CONCURRENCY {concurrency}")
    if not is_number(modifiers.get("activationTarget")):
        errors.append(f"{loc}.spec.advanced.scalingModifiers: policy: set activationTarget (the "
                      "0 -> 1 threshold of the formula's value)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schemas", required=True, metavar="NODE_MODULES",
                    help="node_modules directory holding @kubernetes-models/keda")
    ap.add_argument("--refs", action="store_true", help="check names referenced across objects")
    ap.add_argument("--policy", action="store_true", help="check zipfleet's scaling rules")
    ap.add_argument("--expect", type=int, default=0,
                    help="fail unless at least this many ScaledObjects were checked")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    docs = []
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            try:
                docs.extend(d for d in yaml.safe_load_all(f) if d)
            except yaml.YAMLError as e:
                print(f"{path}: not YAML: {e}")
                return 1

    errors = []
    keda = [d for d in docs if str(d.get("apiVersion", "")).split("/")[0] == KEDA_GROUP]
    auths = {d["metadata"]["name"]: d for d in keda
             if d.get("kind") == "TriggerAuthentication" and (d.get("metadata") or {}).get("name")}
    deployments = {d["metadata"]["name"]: d for d in docs
                   if d.get("kind") == "Deployment" and (d.get("metadata") or {}).get("name")}
    scaled = [d for d in keda if d.get("kind") == "ScaledObject"]
    package = check_schemas(keda, args.schemas, errors) if keda else "no schema needed"
    for so in scaled:
        spec = so.get("spec") or {}
        for i, trig in enumerate(spec.get("triggers") or []):
            if isinstance(trig, dict):
                check_trigger(so, i, trig, auths if args.refs else {}, errors)
        if args.refs:
            target = spec.get("scaleTargetRef") or {}
            kind = target.get("kind", "Deployment")
            if kind == "Deployment" and target.get("name") not in deployments:
                errors.append(f"{where(so)}: scaleTargetRef names no Deployment here: "
                              f"{target.get('name')!r}")
            elif kind == "Deployment" and namespace(so) != namespace(deployments[target["name"]]):
                errors.append(f"{where(so)}: in namespace {namespace(so)!r} but its target "
                              f"Deployment is in {namespace(deployments[target['name']])!r}: "
                              "KEDA scales only its own namespace")
            for i, trig in enumerate(spec.get("triggers") or []):
                ref = (trig.get("authenticationRef") or {})
                if ref and ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication" \
                        and ref.get("name") not in auths:
                    errors.append(f"{where(so)}.spec.triggers[{i}]: authenticationRef names no "
                                  f"TriggerAuthentication here: {ref.get('name')!r}")
                elif ref and ref.get("name") in auths \
                        and namespace(auths[ref["name"]]) != namespace(so):
                    errors.append(f"{where(so)}.spec.triggers[{i}]: its TriggerAuthentication "
                                  f"{ref['name']!r} is in another namespace")
        if args.policy:
            check_policy(so, deployments, errors)
    if len(scaled) < args.expect:
        errors.append(f"expected at least {args.expect} ScaledObject(s), found {len(scaled)}")
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"keda_validate: {len(keda)} KEDA object(s) valid "
          f"({len(scaled)} ScaledObject(s)) in {', '.join(args.files)} [{package}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
