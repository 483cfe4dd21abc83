#!/usr/bin/env python3
"""Strict offline validator for KEDA resources in rendered Kubernetes manifests.

    keda_validate.py --crds ../shared/keda-crds [--refs] [--policy] FILE...

1. Schema: every keda.sh object is validated against the openAPIV3Schema of its CRD (KEDA's
   own CustomResourceDefinitions, passed with --crds), made strict the way the API server's
   strict field validation is: an object schema that lists `properties` accepts no other
   field (unless it says x-kubernetes-preserve-unknown-fields), so a typo such as
   `minReplicaCout` is an error, not a silently dropped field.
2. Trigger metadata: the CRD types `metadata` as a free string map, so each trigger type's keys
   are checked here against the parameters KEDA documents (and its scalers parse) for that
   type; an unknown key, a missing required key or a value of the wrong shape is an error.
   TriggerAuthentication parameters are checked the same way for the triggers that use them.
3. --refs: scaleTargetRef names a Deployment and authenticationRef a TriggerAuthentication
   present in the same files, in the ScaledObject's namespace.
4. --policy: zipfleet's own scaling rules, which a valid-but-wrong ScaledObject would break
   (in-flight jobs counted, scale from zero with an activation threshold, a cooldown and a
   scale-down stabilisation window, the target per replica equal to the worker's
   ZIPFLEET_CONCURRENCY, termination grace longer than ZIPFLEET_SHUTDOWN_GRACE).

Exit status 1 with one line per problem; 0 with a summary when everything holds.
"""

import argparse
import copy
import math
import os
import re
import sys

import jsonschema
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

# ObjectMeta fields a manifest may carry (the CRDs only say `type: object` for metadata).
OBJECT_META = {
    "name", "namespace", "labels", "annotations", "generateName", "finalizers",
    "ownerReferences",
}

KEDA_GROUP = "keda.sh"


def strict(schema):
    """A copy of an OpenAPI v3 (structural) schema in which objects with listed properties
    reject other fields, and Kubernetes' int-or-string extension is honoured."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if not isinstance(node, dict):
            return
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if (node.get("type") == "object" and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties", "definitions"):
            for child in node.get(key, {}).values():
                walk(child)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                walk(node[key])
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key, []):
                walk(child)

    walk(schema)
    return schema


def load_crds(directory):
    crds = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".yaml", ".yml")):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    crds[key] = strict(version["schema"]["openAPIV3Schema"])
    if not crds:
        raise SystemExit(f"keda_validate: no CustomResourceDefinition found in {directory}")
    return crds


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


def check_schema(doc, crds, errors):
    key = (doc.get("apiVersion"), doc.get("kind"))
    schema = crds.get(key)
    if schema is None:
        errors.append(f"{where(doc)}: no KEDA CRD defines {key[0]} {key[1]}")
        return
    validator = jsonschema.Draft7Validator(schema)
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        errors.append(f"{where(doc)}{path}: {err.message}")
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        errors.append(f"{where(doc)}: metadata.name is required")
    else:
        for field in sorted(set(meta) - OBJECT_META):
            errors.append(f"{where(doc)}.metadata: unknown field {field!r}")


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
    if target in deployments:
        grace = duration_seconds(env.get("ZIPFLEET_SHUTDOWN_GRACE", "30s"))
        tgps = pod.get("terminationGracePeriodSeconds", 30)
        if grace is not None and not tgps > grace:
            errors.append(f"Deployment/{target}: policy: terminationGracePeriodSeconds {tgps} "
                          f"must exceed ZIPFLEET_SHUTDOWN_GRACE ({grace:g} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crds", required=True, help="directory with KEDA's CRD YAML files")
    ap.add_argument("--refs", action="store_true", help="check names referenced across objects")
    ap.add_argument("--policy", action="store_true", help="check zipfleet's scaling rules")
    ap.add_argument("--expect", type=int, default=0,
                    help="fail unless at least this many ScaledObjects were checked")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    crds = load_crds(args.crds)
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
    for doc in keda:
        check_schema(doc, crds, errors)
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
          f"({len(scaled)} ScaledObject(s)) in {', '.join(args.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
