// Validates Istio objects (JSON array on stdin) against @kubernetes-models/istio; prints violations as JSON.
//
// Strictness of these models (checked against 3.0.1): the bundled validators are ajv code precompiled
// from the Istio CRD OpenAPI schemas, which carry no `additionalProperties: false` (Kubernetes prunes
// unknown CRD fields instead), so an unknown field such as `spec.http[0].routee` is NOT reported.
// Wrong types, missing required fields, enums, oneOf groups, bounds and patterns ARE reported; CEL
// `x-kubernetes-validations` rules are not. The package has no stricter mode to switch on.
//
// Output: [{index, field, reason}], index into the input array, field a dotted path ("" = whole object).
// Objects outside the *.istio.io groups are skipped. Exit 0 whenever it ran, violations or not.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const MODELS = "@kubernetes-models/istio";
const ISTIO_GROUP = /^[a-z0-9.-]+\.istio\.io$/;

const require = createRequire(import.meta.url);
const installed = require(`${MODELS}/package.json`);

/** Fails fast when the installed models were not generated from the Istio version package.json names. */
function checkIstioVersion() {
  const wanted = require("./package.json").config.istioVersion;
  const inputs = installed["crd-generate"].input.join(" ");
  if (!inputs.includes(`/istio/${wanted}/`)) {
    throw new Error(`${MODELS} ${installed.version} was not generated from Istio ${wanted} CRDs: ${inputs}`);
  }
}

/** Appends a key to a dotted path; keys such as "app.kubernetes.io/name" are quoted to stay unambiguous. */
function joinField(parent, key) {
  if (!/^[A-Za-z_][\w-]*$/.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent ? `${parent}.${key}` : key;
}

/** "/spec/http/0/route/0/weight" -> "spec.http[0].route[0].weight" (JSON Pointer escapes undone). */
function toDottedPath(instancePath) {
  let field = "";
  for (const raw of instancePath.split("/").slice(1)) {
    const segment = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    field = /^\d+$/.test(segment) ? `${field}[${segment}]` : joinField(field, segment);
  }
  return field;
}

const modelCache = new Map();

/** The model class for group/version/kind, or null when the package has none. */
async function modelFor(group, version, kind) {
  const key = `${group}/${version}/${kind}`;
  if (!modelCache.has(key)) {
    let model = null;
    // The kind becomes part of an import specifier, so only a plain identifier is tried.
    if (/^[A-Za-z][A-Za-z0-9]*$/.test(kind)) {
      try {
        model = (await import(`${MODELS}/${key}`))[kind] ?? null;
      } catch (error) {
        // Only "no such export/file" means "no model"; anything else is a real crash.
        if (!["ERR_PACKAGE_PATH_NOT_EXPORTED", "ERR_MODULE_NOT_FOUND"].includes(error.code)) throw error;
      }
    }
    modelCache.set(key, model);
  }
  return modelCache.get(key);
}

/** Violations of one object; [] when it is valid or not an Istio object. */
async function validateObject(object, index) {
  const apiVersion = typeof object?.apiVersion === "string" ? object.apiVersion : "";
  const [group, version] = apiVersion.split("/");
  if (!ISTIO_GROUP.test(group)) return [];
  // The exports map lists every group/version the package has a model for.
  if (!/^[^/]+\/[^/]+$/.test(apiVersion) || !(`./${apiVersion}` in installed.exports)) {
    return [{ index, field: "apiVersion", reason: `no Istio schema known for apiVersion ${apiVersion}` }];
  }
  const kind = String(object.kind);
  const Model = await modelFor(group, version, kind);
  if (!Model) {
    return [{ index, field: "kind", reason: `no Istio schema known for kind ${kind} in ${apiVersion}` }];
  }
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    if (!Array.isArray(error.errors)) throw error;
    return error.errors.map((e) => {
      const field = toDottedPath(e.instancePath);
      if (e.keyword === "required") {
        return { index, field: joinField(field, e.params.missingProperty), reason: "is required" };
      }
      return { index, field, reason: e.message };
    });
  }
}

checkIstioVersion();
const objects = JSON.parse(readFileSync(0, "utf8"));
if (!Array.isArray(objects)) throw new TypeError("stdin must be a JSON array of objects");
const violations = [];
for (const [index, object] of objects.entries()) {
  violations.push(...(await validateObject(object, index)));
}
process.stdout.write(JSON.stringify(violations));
