// Validates Istio objects (JSON array on stdin) against @kubernetes-models/istio; prints violations as JSON.
//
// Two checks run on every object whose apiVersion/kind the package has a model for:
//
// 1. The package's ajv validators, precompiled from the Istio CRD OpenAPI schemas: wrong types, missing
//    required fields, enums, oneOf groups, bounds and patterns ARE reported. CEL `x-kubernetes-validations`
//    rules are NOT. These schemas carry no `additionalProperties: false`, so ajv never reports unknown fields.
// 2. Unknown fields, as the API server rejects them under kubectl's default strict field validation: the
//    model's own type declarations (the package's `.d.ts`, parsed with the TypeScript compiler API, never a
//    hand-written field list) are walked along the data. In an object type every key must be a declared
//    property, unless the type has an index signature (`{ [key: string]: T }`: header-match names, labels),
//    which allows any key; values are checked against the declared type, Array<T> element by element. A union
//    or intersection allows the keys of any of its object members; `Exclude<T, U>` is read as T. `metadata`
//    is checked too, by following the IObjectMeta import into @kubernetes-models/apimachinery (the API server
//    also reports unknown metadata fields of custom resources). The walk stops at primitives, literals, any,
//    unknown, empty interfaces ({}: e.g. managedFields[].fieldsV1) and types it cannot resolve, so it is
//    lenient where the declarations are open, and a value of the wrong JSON type is left to ajv.
//
// The walk does not run on the declarations themselves but on a "fields tree" derived from them once per
// model (apiVersion/kind) that accepts and rejects exactly what walking the declarations does. It is plain
// JSON, {root, nodes}, a node being {k?: {key: node}, i?: node, e?: node} with nodes named by their index in
// `nodes`: `k` (there when some member of the type is an object type) maps every declared key to the merged
// types of that key, `i` is the merged index signature types (any other key is then allowed), `e` the merged
// Array<T> element types; unions and intersections are merged, and {} checks nothing below it.
//
// Trees are cached, a file per model: node_modules/.cache/istio-fields/<key>/<group>/<version>/<Kind>.json,
// <key> naming the installed @kubernetes-models/istio, @kubernetes-models/apimachinery and typescript
// versions and a hash of this file, so a reinstall or an edit invalidates them. Files are written under a
// temporary name and renamed into place, so a concurrent run never reads half of one, and carry a SHA-256 of
// their tree: a damaged or foreign file is derived again and replaced, never trusted. TypeScript (~0.3 s to
// load) and the .d.ts files (DestinationRule's is 1.6 MB, ~0.2 s to parse, JSDoc skipped) are read only on a
// cache miss. A cache directory that cannot be created or written means deriving trees in memory on every
// run (~0.8 s instead of ~0.25 s for a render's Istio objects), nothing worse.
//
// `node validate.mjs --warm` caches the tree of every model the package exports (`make deps` runs it right
// after `npm ci`), so the first render is fast too. It exits 1 when it cannot write the cache.
//
// Environment:
//   ISTIO_FIELDS_CACHE=off      no trees, no cache: unknown fields are found by walking the declarations
//                               directly, the reference the trees are derived from (tests compare the two
//                               ways). Unset or "on": trees and their cache are used.
//   ISTIO_FIELDS_CACHE_DIR=dir  the cache directory, instead of node_modules/.cache/istio-fields.
//
// Output: [{index, field, reason}], index into the input array, field a dotted path ("" = whole object),
// reason "unknown field" for check 2. Violations are de-duplicated and ordered by index, then by field path
// (array indexes numerically; ties keep ajv's before unknown fields). Objects outside the *.istio.io groups
// are skipped. Exit 0 whenever it ran, violations or not.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MODELS = "@kubernetes-models/istio";
const ISTIO_GROUP = /^[a-z0-9.-]+\.istio\.io$/;

const SELF = fileURLToPath(import.meta.url);
const require = createRequire(import.meta.url);
const installed = require(`${MODELS}/package.json`);

const CACHE_SETTING = process.env.ISTIO_FIELDS_CACHE ?? "";
if (!["", "on", "off"].includes(CACHE_SETTING)) {
  throw new Error(`ISTIO_FIELDS_CACHE must be "on" or "off", not ${JSON.stringify(CACHE_SETTING)}`);
}
const CACHE_OFF = CACHE_SETTING === "off";
const CACHE_DIR =
  process.env.ISTIO_FIELDS_CACHE_DIR || join(dirname(SELF), "node_modules", ".cache", "istio-fields");

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

/** ["spec", "http", 0, "routee"] -> "spec.http[0].routee". */
function toField(segments) {
  let field = "";
  for (const segment of segments) {
    field = typeof segment === "number" ? `${field}[${segment}]` : joinField(field, segment);
  }
  return field;
}

/** "/spec/http/0/weight" -> ["spec", "http", 0, "weight"] (JSON Pointer escapes undone). */
function pointerSegments(instancePath) {
  return instancePath
    .split("/")
    .slice(1)
    .map((raw) => (/^\d+$/.test(raw) ? Number(raw) : raw.replaceAll("~1", "/").replaceAll("~0", "~")));
}

/** Orders paths segment by segment: array indexes numerically, keys by code unit, a prefix first. */
function comparePaths(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i], b[i]];
    if (x === y) continue;
    if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
    return typeof x === "number" ? x - y : x < y ? -1 : 1;
  }
  return a.length - b.length;
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

/** ajv violations {path, reason} of an object of a known model; [] when valid. */
function schemaViolations(Model, object) {
  try {
    new Model(object).validate();
    return [];
  } catch (error) {
    if (!Array.isArray(error.errors)) throw error;
    return error.errors.map((e) => {
      const path = pointerSegments(e.instancePath);
      if (e.keyword !== "required") return { path, reason: e.message };
      return { path: [...path, e.params.missingProperty], reason: "is required" };
    });
  }
}

// ---- Unknown fields, from the model's type declarations -------------------------------------------------

let ts = null; // the TypeScript compiler API, loaded on first use (compiling typescript.js: ~0.3 s)
const sourceFiles = new Map(); // .d.ts path -> ts.SourceFile, each parsed at most once per run
const declarations = new Map(); // `${name}\0${path}` -> {node, path} | null
const shapes = new Map(); // type node -> shapeOf it, computed at most once per run
const OPEN = { open: true }; // the shape of a type that allows anything: the walk stops there

/** Parses a declaration file once; JSDoc comments are skipped, they carry no structure. */
function sourceFile(path) {
  if (!sourceFiles.has(path)) {
    const text = readFileSync(path, "utf8");
    const { ScriptTarget, JSDocParsingMode } = ts;
    const options = { languageVersion: ScriptTarget.Latest, jsDocParsingMode: JSDocParsingMode.ParseNone };
    sourceFiles.set(path, ts.createSourceFile(path, text, options, false, ts.ScriptKind.TS));
  }
  return sourceFiles.get(path);
}

/** The .d.ts a module specifier names, as TypeScript resolves it (`exports` "types", ./x.js -> x.d.ts). */
function resolveTypes(specifier, fromPath) {
  const options = { moduleResolution: ts.ModuleResolutionKind.Bundler, module: ts.ModuleKind.ESNext };
  return ts.resolveModuleName(specifier, fromPath, options, ts.sys).resolvedModule?.resolvedFileName ?? null;
}

/**
 * The interface or type alias `name` means in a .d.ts, following imports and re-exports
 * (`export type { IObjectMeta as IIoK8s...ObjectMeta }`) into other files; null when there is none.
 */
function declarationOf(name, path) {
  const key = `${name}\0${path}`;
  if (declarations.has(key)) return declarations.get(key);
  declarations.set(key, null); // guards against import/export cycles
  const statements = sourceFile(path).statements;
  let found = null;
  for (const statement of statements) {
    const declares = ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement);
    if (declares && statement.name.text === name) {
      found = { node: statement, path };
      break;
    }
  }
  for (const statement of found ? [] : statements) {
    let bindings;
    if (ts.isImportDeclaration(statement)) bindings = statement.importClause?.namedBindings;
    else if (ts.isExportDeclaration(statement)) bindings = statement.exportClause;
    if (!bindings || !(ts.isNamedImports(bindings) || ts.isNamedExports(bindings))) continue;
    const element = bindings.elements.find((e) => e.name.text === name);
    if (!element) continue;
    const original = (element.propertyName ?? element.name).text;
    if (statement.moduleSpecifier) {
      const target = resolveTypes(statement.moduleSpecifier.text, path);
      found = target ? declarationOf(original, target) : null;
    } else if (original !== name) {
      found = declarationOf(original, path);
    }
    if (found) break;
  }
  declarations.set(key, found);
  return found;
}

/** Members of an interface or type literal: declared properties and the index signature, if any. */
function objectShape(members, path) {
  const properties = new Map();
  let index = null;
  for (const member of members) {
    if (ts.isIndexSignatureDeclaration(member)) {
      index = { node: member.type, path };
    } else if (ts.isPropertySignature(member)) {
      const name = member.name;
      if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name)) {
        properties.set(name.text, member.type ? { node: member.type, path } : OPEN); // no type: any
      }
    }
  }
  // An empty object type ({}, e.g. FieldsV1) accepts any object.
  return properties.size === 0 && index === null ? null : { properties, index };
}

/**
 * What a declared type allows, flattened through parentheses, unions, intersections, Exclude and named
 * types: OPEN (anything goes, the walk stops), or {objects: [objectShape], elements: [type]} where elements
 * are the element types of its Array<T> members. Primitive and literal members add nothing: a value that
 * must be one is not an object or array, and ajv reports it if it is.
 */
function shapeOf(type) {
  if (type === OPEN) return OPEN;
  if (shapes.has(type.node)) return shapes.get(type.node);
  shapes.set(type.node, OPEN); // a type that (illegally) contains itself stays open
  const shape = { objects: [], elements: [] };
  const add = (node, path) => {
    const part = shapeOf({ node, path });
    if (part === OPEN) return false;
    shape.objects.push(...part.objects);
    shape.elements.push(...part.elements);
    return true;
  };
  const { node, path } = type;
  let open = false;
  if (ts.isInterfaceDeclaration(node) || ts.isTypeLiteralNode(node)) {
    // `interface X extends Y` does not occur in the models; extending types is not followed, so stay lenient.
    const object = node.heritageClauses?.length ? null : objectShape(node.members, path);
    if (object) shape.objects.push(object);
    else open = true;
  } else if (ts.isTypeAliasDeclaration(node) || ts.isParenthesizedTypeNode(node)) {
    open = !add(node.type, path);
  } else if (ts.isUnionTypeNode(node) || ts.isIntersectionTypeNode(node)) {
    open = !node.types.every((member) => add(member, path));
  } else if (ts.isArrayTypeNode(node)) {
    shape.elements.push({ node: node.elementType, path });
  } else if (ts.isTypeReferenceNode(node)) {
    const name = ts.isIdentifier(node.typeName) ? node.typeName.text : null;
    const args = node.typeArguments ?? [];
    if ((name === "Array" || name === "ReadonlyArray") && args.length === 1) {
      shape.elements.push({ node: args[0], path });
    } else if ((name === "Exclude" || name === "Extract") && args.length === 2) {
      open = !add(args[0], path); // both narrow their first argument
    } else {
      const declaration = name && !args.length ? declarationOf(name, path) : null;
      open = !declaration || !add(declaration.node, declaration.path);
    }
  } else {
    // any, unknown, object and anything not listed are open; primitives and literals are leaves.
    const scalars = ["String", "Number", "Boolean", "BigInt", "Undefined", "Never"].map(
      (name) => ts.SyntaxKind[`${name}Keyword`],
    );
    open = !ts.isLiteralTypeNode(node) && !scalars.includes(node.kind); // LiteralType covers null too
  }
  const result = open ? OPEN : shape;
  shapes.set(node, result);
  return result;
}

const isPlainObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Appends {path, reason: "unknown field"} for every key `value` has that none of `types` declares. This walks
 * the declarations themselves: the reference fields trees are derived from, used with ISTIO_FIELDS_CACHE=off.
 */
function unknownFieldsByDeclarations(value, types, path, out) {
  const allowed = { objects: [], elements: [] };
  for (const type of types) {
    const shape = shapeOf(type);
    if (shape === OPEN) return;
    allowed.objects.push(...shape.objects);
    allowed.elements.push(...shape.elements);
  }
  if (Array.isArray(value)) {
    value.forEach((element, i) => unknownFieldsByDeclarations(element, allowed.elements, [...path, i], out));
  } else if (isPlainObject(value) && allowed.objects.length > 0) {
    for (const [key, child] of Object.entries(value)) {
      // A declared property takes precedence over an index signature of the same object type.
      const declared = allowed.objects.map((o) => o.properties.get(key) ?? o.index).filter(Boolean);
      if (declared.length === 0) out.push({ path: [...path, key], reason: "unknown field" });
      else unknownFieldsByDeclarations(child, [...new Set(declared)], [...path, key], out);
    }
  }
}

const rootTypes = new Map(); // apiVersion/kind -> the model's interface {node, path}

/** The interface the model class implements (`class VirtualService ... implements IVirtualService`). */
function rootType(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!rootTypes.has(key)) {
    ts ??= require("typescript");
    const path = resolveTypes(`${MODELS}/${key}`, fileURLToPath(import.meta.url));
    if (!path) throw new Error(`${MODELS} has a model for ${key} but no type declarations for it`);
    const model = sourceFile(path).statements.find((s) => ts.isClassDeclaration(s) && s.name?.text === kind);
    const implemented = model?.heritageClauses
      ?.find((clause) => clause.token === ts.SyntaxKind.ImplementsKeyword)
      ?.types.find((t) => ts.isIdentifier(t.expression));
    const declaration = implemented && declarationOf(implemented.expression.text, path);
    if (!declaration) throw new Error(`${path}: found no interface that class ${kind} implements`);
    rootTypes.set(key, declaration);
  }
  return rootTypes.get(key);
}

// ---- Fields trees, derived from the declarations and cached ---------------------------------------------

const typeIds = new Map(); // type node -> a number naming it in the keys of sets of types
const typeId = ({ node }) => {
  if (!typeIds.has(node)) typeIds.set(node, typeIds.size);
  return typeIds.get(node);
};

/**
 * The fields tree ({root, nodes}, see the header) of a root type. A node stands for a set of types, as
 * unknownFieldsByDeclarations treats it: {} when some type is open or none has object or array members;
 * otherwise `k` gives, for every key an object member declares, the set of what each object member allows
 * for it (its property, else its index signature), `i` the set of index signatures, `e` of element types.
 * Equal nodes are stored once; a set met again while its node is derived (a recursive type) refers back.
 */
function deriveFieldsTree(root) {
  const nodes = [];
  const byContent = new Map(); // JSON of a node -> its index
  const bySet = new Map(); // sorted type ids -> {id}, id set once known (or reserved by a recursive use)
  const intern = (node) => {
    const content = JSON.stringify(node);
    if (!byContent.has(content)) byContent.set(content, nodes.push(node) - 1);
    return byContent.get(content);
  };
  const visit = (types) => {
    const objects = [];
    const elements = [];
    for (const type of types) {
      const shape = shapeOf(type);
      if (shape === OPEN) return intern({});
      objects.push(...shape.objects);
      elements.push(...shape.elements);
    }
    if (objects.length === 0 && elements.length === 0) return intern({});
    const set = [...new Set(types.map(typeId))].sort((a, b) => a - b).join(",");
    const seen = bySet.get(set);
    if (seen) {
      seen.id ??= nodes.push(null) - 1; // still being derived: reserve its index
      return seen.id;
    }
    const entry = {};
    bySet.set(set, entry);
    const node = {};
    if (objects.length > 0) {
      node.k = Object.create(null); // a key "__proto__" stays a key
      const names = [...new Set(objects.flatMap((o) => [...o.properties.keys()]))].sort();
      for (const name of names) {
        node.k[name] = visit(objects.map((o) => o.properties.get(name) ?? o.index).filter(Boolean));
      }
      const indexes = objects.map((o) => o.index).filter(Boolean);
      if (indexes.length > 0) node.i = visit(indexes);
    }
    if (elements.length > 0) node.e = visit(elements);
    if (entry.id === undefined) entry.id = intern(node);
    else nodes[entry.id] = node;
    return entry.id;
  };
  const rootId = visit([root]);
  return { root: rootId, nodes };
}

/** Appends {path, reason: "unknown field"} for every key `value` has that node `id` of `tree` disallows. */
function unknownFieldsInTree(value, tree, id, path, out) {
  const node = tree.nodes[id];
  if (Array.isArray(value)) {
    if (node.e === undefined) return;
    value.forEach((element, i) => unknownFieldsInTree(element, tree, node.e, [...path, i], out));
  } else if (isPlainObject(value) && node.k) {
    for (const [key, child] of Object.entries(value)) {
      // A declared key, else the index signature; neither: unknown.
      const next = Object.hasOwn(node.k, key) ? node.k[key] : node.i;
      if (next === undefined) out.push({ path: [...path, key], reason: "unknown field" });
      else unknownFieldsInTree(child, tree, next, [...path, key], out);
    }
  }
}

/** Whether parsed JSON is a well-formed fields tree: every reference an index into `nodes`. */
function isFieldsTree(tree) {
  if (!isPlainObject(tree) || !Array.isArray(tree.nodes)) return false;
  const { nodes } = tree;
  const isRef = (ref) => Number.isInteger(ref) && ref >= 0 && ref < nodes.length;
  const isNode = (node) =>
    isPlainObject(node) &&
    Object.keys(node).every((key) => ["k", "i", "e"].includes(key)) &&
    (node.k === undefined || (isPlainObject(node.k) && Object.values(node.k).every(isRef))) &&
    (node.i === undefined || isRef(node.i)) &&
    (node.e === undefined || isRef(node.e));
  return isRef(tree.root) && Object.keys(tree).length === 2 && nodes.every(isNode);
}

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

let cacheKey = null;

/** The cache subdirectory: versions of the packages trees are derived from and with, and of this file. */
function fieldsCacheKey() {
  if (cacheKey === null) {
    const fromModels = createRequire(require.resolve(`${MODELS}/package.json`));
    const apimachinery = fromModels("@kubernetes-models/apimachinery/package.json").version;
    const typescript = require("typescript/package.json").version;
    const script = sha256(readFileSync(SELF)).slice(0, 16);
    const versions = `istio-${installed.version}_apimachinery-${apimachinery}_typescript-${typescript}`;
    cacheKey = `${versions}_validate-${script}`;
  }
  return cacheKey;
}

const STALE_KEY = /^istio-.+_apimachinery-.+_typescript-.+_validate-[0-9a-f]+$/;

/** The cached tree of a model (`${apiVersion}/${kind}`) in `file`; null when missing or untrustworthy. */
function readCachedTree(file, model) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (typeof error.code === "string") return null; // missing, unreadable: a miss
    throw error;
  }
  const newline = text.indexOf("\n");
  if (newline < 0) return null;
  const body = text.slice(newline + 1);
  try {
    const header = JSON.parse(text.slice(0, newline));
    const ours = header?.model === model && header.key === fieldsCacheKey();
    const tree = ours && header.sha256 === sha256(body) ? JSON.parse(body) : null;
    return isFieldsTree(tree) ? tree : null;
  } catch (error) {
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/** Stores a tree atomically (a temporary file renamed into place); the error when it cannot, else null. */
function writeCachedTree(file, model, tree) {
  const body = JSON.stringify(tree);
  const header = JSON.stringify({ model, key: fieldsCacheKey(), sha256: sha256(body) });
  const temporary = `${file}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(temporary, `${header}\n${body}`, { flag: "wx" });
    renameSync(temporary, file);
    return null;
  } catch (error) {
    if (typeof error.code !== "string") throw error;
    try {
      rmSync(temporary, { force: true });
    } catch {
      // Nothing was written, or it cannot be removed either.
    }
    return error;
  }
}

const fieldsTrees = new Map(); // apiVersion/kind -> {tree, error}

/**
 * The fields tree of a model, from the cache or derived (and then cached): {tree, error}, error the reason
 * it could not be cached, or null.
 */
function loadFieldsTree(apiVersion, kind) {
  const model = `${apiVersion}/${kind}`;
  if (!fieldsTrees.has(model)) {
    const file = join(CACHE_DIR, fieldsCacheKey(), ...apiVersion.split("/"), `${kind}.json`);
    let tree = readCachedTree(file, model);
    let error = null;
    if (!tree) {
      tree = deriveFieldsTree(rootType(apiVersion, kind));
      error = writeCachedTree(file, model, tree);
    }
    fieldsTrees.set(model, { tree, error });
  }
  return fieldsTrees.get(model);
}

/** --warm: caches the tree of every model the package exports; stale cache keys are removed. */
async function warm() {
  checkIstioVersion();
  if (CACHE_OFF) throw new Error("--warm has nothing to do with ISTIO_FIELDS_CACHE=off");
  let count = 0;
  for (const entry of Object.keys(installed.exports)) {
    const [, group, version] = /^\.\/([^/]+)\/([^/]+)\/\*$/.exec(entry) ?? [];
    if (!group || !ISTIO_GROUP.test(group)) continue;
    const apiVersion = `${group}/${version}`;
    for (const [kind, Model] of Object.entries(await import(`${MODELS}/${apiVersion}`))) {
      if (typeof Model !== "function" || Model.apiVersion !== apiVersion || Model.kind !== kind) continue;
      const { error } = loadFieldsTree(apiVersion, kind);
      if (error) {
        const model = `${apiVersion}/${kind}`;
        process.stderr.write(`validate.mjs --warm: could not cache the tree of ${model}: ${error.message}\n`);
        process.exitCode = 1;
        return;
      }
      count++;
    }
  }
  if (count === 0) throw new Error(`${MODELS} ${installed.version} exports no models to cache trees of`);
  for (const name of readdirSync(CACHE_DIR)) {
    if (!STALE_KEY.test(name) || name === fieldsCacheKey()) continue;
    try {
      rmSync(join(CACHE_DIR, name), { recursive: true, force: true });
    } catch (error) {
      if (typeof error.code !== "string") throw error; // a stale tree left behind is never read again
    }
  }
  const where = join(CACHE_DIR, fieldsCacheKey());
  process.stdout.write(`validate.mjs --warm: cached the fields trees of ${count} models in ${where}\n`);
}

// ---- Per object ----------------------------------------------------------------------------------------

/** The model to validate an object with: {Model} or {violation} ({} when it is not an Istio object). */
async function modelOf(object, index) {
  const apiVersion = typeof object?.apiVersion === "string" ? object.apiVersion : "";
  const [group, version] = apiVersion.split("/");
  if (!ISTIO_GROUP.test(group)) return {};
  // The exports map lists every group/version the package has a model for.
  if (!/^[^/]+\/[^/]+$/.test(apiVersion) || !(`./${apiVersion}` in installed.exports)) {
    const reason = `no Istio schema known for apiVersion ${apiVersion}`;
    return { violation: { index, field: "apiVersion", reason } };
  }
  const kind = String(object.kind);
  const Model = await modelFor(group, version, kind);
  if (!Model) {
    const reason = `no Istio schema known for kind ${kind} in ${apiVersion}`;
    return { violation: { index, field: "kind", reason } };
  }
  return { Model };
}

/** Both kinds of violation of one object as output: sorted by path, de-duplicated. */
function outputViolations(index, found) {
  // Stable sort: on an equal path ajv's violations stay before unknown fields.
  found.sort((a, b) => comparePaths(a.path, b.path));
  const seen = new Set();
  const violations = [];
  for (const { path, reason } of found) {
    const field = toField(path);
    const key = JSON.stringify([field, reason]);
    if (!seen.has(key)) violations.push({ index, field, reason });
    seen.add(key);
  }
  return violations;
}

async function main() {
  checkIstioVersion();
  const objects = JSON.parse(readFileSync(0, "utf8"));
  if (!Array.isArray(objects)) throw new TypeError("stdin must be a JSON array of objects");
  const violations = [];
  for (const [index, object] of objects.entries()) {
    const { Model, violation } = await modelOf(object, index);
    if (violation) violations.push(violation);
    if (!Model) continue;
    const found = schemaViolations(Model, object);
    if (CACHE_OFF) {
      unknownFieldsByDeclarations(object, [rootType(object.apiVersion, object.kind)], [], found);
    } else {
      const { tree } = loadFieldsTree(object.apiVersion, object.kind);
      unknownFieldsInTree(object, tree, tree.root, [], found);
    }
    violations.push(...outputViolations(index, found));
  }
  process.stdout.write(JSON.stringify(violations));
}

const args = process.argv.slice(2);
if (args.length === 0) await main();
else if (args.length === 1 && args[0] === "--warm") await warm();
else throw new Error(`usage: node validate.mjs [--warm] (no argument: validates stdin), not ${args}`);
