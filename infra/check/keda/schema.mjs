// KEDA objects against KEDA's own API schema, strictly: the schema part of
// infra/check/keda_validate.py (which runs this and adds trigger, reference and policy checks).
//
//   node infra/check/keda/schema.mjs NODE_MODULES_DIR < docs.json
//
// stdin: a JSON array of Kubernetes objects (keda.sh/v1alpha1). stdout: a JSON array of
// {"doc": INDEX, "path": "/spec/...", "message": "..."}, empty when every object is valid.
//
// The schemas come from the npm package @kubernetes-models/keda (pinned in package.json and
// package-lock.json here; infra/check.sh installs it into target/check-tools/keda), generated
// from KEDA's Go API types, with a compiled validate function per kind (types, required
// fields, enums of the API). Those functions, like the API server without strict field
// validation, let fields they do not know through. The API server's strict mode (kubectl's
// default since 1.27) rejects them, and a typo such as `minReplicaCout` would otherwise be a
// silently dropped setting, so unknown fields are errors here too: each object is validated
// through a proxy that records which fields the validator looks up. A compiled validator
// looks up every property its schema lists, and enumerates the keys of free maps (trigger
// `metadata`, labels); a field present in the document that it never looked at is one KEDA's
// schema does not have. (KEDA's ScaledObject and TriggerAuthentication schemas have no
// x-kubernetes-preserve-unknown-fields object, the one case this would misreport.)
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
if (!modules) {
  console.error("usage: node schema.mjs NODE_MODULES_DIR < docs.json");
  process.exit(2);
}
// By file path: the package is ESM-only and lives outside this script's directory tree.
const keda = await import(
  pathToFileURL(join(modules, "@kubernetes-models/keda/keda.sh/v1alpha1/index.js")).href
);
const { version } = JSON.parse(
  readFileSync(join(modules, "@kubernetes-models/keda/package.json"), "utf8"),
);

const KINDS = {
  ScaledObject: keda.ScaledObject,
  ScaledJob: keda.ScaledJob,
  TriggerAuthentication: keda.TriggerAuthentication,
  ClusterTriggerAuthentication: keda.ClusterTriggerAuthentication,
};

// A proxy over `value` that records, per JSON pointer, which keys were read and whether the
// keys were enumerated (a map or additionalProperties schema reads them all).
function tracked(value, pointer, seen) {
  if (value === null || typeof value !== "object") return value;
  const record = { read: new Set(), enumerated: false, value };
  seen.set(pointer, record);
  return new Proxy(value, {
    get(target, key, receiver) {
      const child = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return child;
      record.read.add(key);
      return child !== null && typeof child === "object"
        ? tracked(child, `${pointer}/${key}`, seen)
        : child;
    },
    has(target, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      record.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

const docs = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
docs.forEach((doc, index) => {
  const Model = KINDS[doc?.kind];
  if (doc?.apiVersion !== "keda.sh/v1alpha1" || !Model) {
    problems.push({
      doc: index,
      path: "",
      message: `no schema for ${doc?.apiVersion} ${doc?.kind} in @kubernetes-models/keda ${version}`,
    });
    return;
  }
  const seen = new Map();
  try {
    // The model's validate() runs the package's compiled function on `this`.
    Model.prototype.validate.call(tracked(doc, "", seen));
  } catch (err) {
    for (const e of err.errors ?? [{ instancePath: "", message: String(err.message) }]) {
      const detail = e.params?.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : "";
      problems.push({ doc: index, path: e.instancePath, message: `${e.message}${detail}` });
    }
  }
  for (const [pointer, record] of seen) {
    if (record.enumerated || Array.isArray(record.value)) continue;
    for (const key of Object.keys(record.value)) {
      if (!record.read.has(key)) {
        problems.push({ doc: index, path: pointer, message: `unknown field "${key}"` });
      }
    }
  }
});
process.stdout.write(JSON.stringify({ package: `@kubernetes-models/keda@${version}`, problems }));
