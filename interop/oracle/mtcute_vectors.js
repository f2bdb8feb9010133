#!/usr/bin/env node
// Oracle vectors for mtcall's TL codec, produced by mtcute (npm `@mtcute/node`, whose
// `@mtcute/core` bundles the TL schema and codec for API layer 227).
//
// Usage: node mtcute_vectors.js MANIFEST.json OUT.json
//
// The manifest, the generated values, OUT.json and the exit status are described in
// vectors_common.js (shared with gramjs_vectors.js). Here: mtcute's side. A form is known when
// its constructor id is in mtcute's bundled schema (`@mtcute/core/tl/api-schema.json`, and
// `mtp-schema.json` for MTProto, where mtcute names the constructors `mt_<name>`) and mtcute's
// writer map (`__tlWriterMap`, from `@mtcute/core/utils.js`) has a writer for it. Values are
// mtcute's plain objects ({_: name, camelCaseField: ...}; long as the `long` package's Long,
// mtcute's `int53` fields as JS numbers, bytes/int128/int256 as Buffers), serialized with
// mtcute's TlBinaryWriter sized by its TlSerializationCounter. boolTrue/boolFalse are core in
// mtcute (its writer's boolean()); their bytes are taken from a jsonBool's body. The layer is
// mtcute's own (`tl.LAYER` of @mtcute/core). OUT.json's "client" is "mtcute 0.30.3".
//
// mtcute ships ES modules, and Node's ES module resolution ignores NODE_PATH; the packages are
// found the way require() finds them (NODE_PATH included) and their exported ES module entry
// points are imported from there.

"use strict";

const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");
const { run, LONG_EDGES } = require("./vectors_common");

const LAYER = 227;

// mtcute quirks, kept small and explicit:
// - `vector<future_salt>` (future_salts.salts, mtcute's mt_future_salts.salts) is written by
//   TlBinaryWriter.vector calling the bare element writer as fn.call(writer, item, bare), while
//   the generated bare writer takes (w = this, v): it gets the item as the writer and throws
//   ("Object undefined is missing required property validSince"). Only the empty vector can be
//   serialized, so this vector is always generated empty. (TlSerializationCounter also counts 8
//   bytes for a bare vector's header instead of 4, so TlBinaryWriter.serializeObject would leave
//   4 zero bytes after such an object; `serialize` below takes the writer's result() instead.)
const EMPTY_VECTORS = new Set(["future_salts.salts"]);
// - A conditional vector that is present but empty is written as absent (the writer tests
//   `v.x && v.x.length`), so present conditional vectors always get elements (and a group with
//   a vector that cannot have any stays absent).
// - Parameters mtcute types `int53` (ids and sizes that are `long` in TL) are JS numbers, so
//   only safe integers are generated for them, and its int53 writer gets some negative values
//   wrong (for a multiple of 2^32, high word one too small: -2^32 is written as -2^33; and when
//   the value / 2^32 - 1 rounds to an integer, as for -(2^53 - 1)): values its writer does not
//   encode exactly are never generated (see int53Value). Recorded per parameter in INT53.
const INT53 = new Set();
const INT53_EDGES = [0, 1, -1, 2 ** 53 - 1, 2 ** 52 + 1, 2 ** 32, 2 ** 32 - 1, 2 ** 31, -(2 ** 31) - 1, -(2 ** 32) - 1, 777000];

// Parameterless functions used as the inner object of `!X` / `Object` parameters.
const RAW_QUERIES = [() => ({ _: "help.getConfig" }), () => ({ _: "help.getNearestDc" }), () => ({ _: "updates.getState" })];

// ---- loading mtcute -------------------------------------------------------------------------
// The installed package directory of `pkg` and its package.json, found like require() would.
function findPackage(pkg) {
  for (const dir of require.resolve.paths(pkg) || []) {
    const file = path.join(dir, pkg, "package.json");
    if (fs.existsSync(file)) return { dir: path.dirname(file), meta: JSON.parse(fs.readFileSync(file, "utf8")) };
  }
  throw new Error(`cannot find ${pkg} (set NODE_PATH to the node_modules holding it)`);
}

// The file a package export ("." or "./sub/path") maps to for `import`.
function exportedFile(found, sub) {
  let target = found.meta.exports && found.meta.exports[sub];
  while (target && typeof target === "object") target = target.import !== undefined ? target.import : target.default;
  if (typeof target !== "string") throw new Error(`${found.meta.name} does not export ${sub}`);
  return path.join(found.dir, target);
}

async function loadMtcute() {
  const core = findPackage("@mtcute/core");
  const esm = (sub) => import(pathToFileURL(exportedFile(core, sub)).href);
  const json = (sub) => JSON.parse(fs.readFileSync(exportedFile(core, sub), "utf8"));
  const [index, utils] = await Promise.all([esm("."), esm("./utils.js")]);
  return {
    version: core.meta.version,
    layer: index.tl.LAYER,
    Long: index.Long,
    writers: utils.__tlWriterMap,
    TlBinaryWriter: utils.TlBinaryWriter,
    TlSerializationCounter: utils.TlSerializationCounter,
    api: json("./tl/api-schema.json"),
    mtp: json("./tl/mtp-schema.json"),
  };
}

// ---- mtcute's view of each definition -------------------------------------------------------
// mtcute's property name for a TL parameter (its code generator's snake_case -> camelCase:
// `user_id` -> `userId`, `srp_B` -> `srpB`, `g_a` -> `gA`, `self` stays).
const camel = (name) => name.replace(/_([a-z0-9])/gi, (_, c) => c.toUpperCase());

// A parameter of mtcute's schema in the manifest's notation: `name:flags.N?Type`, with `int53`
// as `long` (same wire form) and MTProto types without mtcute's `mt_` prefix.
function mtParam(a) {
  const m = a.typeModifiers || {};
  let t = (a.type === "int53" ? "long" : a.type).replace(/^mt_/, "");
  if (m.isBareVector) t = `vector<${t}>`;
  else if (m.isVector) t = `Vector<${t}>`;
  return `${a.name}:${m.predicate ? `${m.predicate}?` : ""}${t}`;
}
const manifestParam = (p) => `${p.name}:${p.flag ? `${p.flag.field}.${p.flag.bit}?` : ""}${p.type}`;
const resultOf = (e) => (e.typeModifiers && e.typeModifiers.isVector ? `Vector<${e.type}>` : e.type);
const hexId = (id) => (id >>> 0).toString(16).padStart(8, "0");

function makeLib(mt) {
  const entries = [...mt.api.e, ...mt.mtp];
  const byId = new Map(entries.map((e) => [e.id >>> 0, e]));
  const byName = new Map(entries.map((e) => [e.name, e]));
  const W = mt.writers;
  const entryOf = (form) => byId.get(form.id >>> 0);
  const knows = (form) => {
    const e = entryOf(form);
    return Boolean(e && typeof W[e.name] === "function");
  };

  // The whole parameter sequence (flags fields included, in order) must be mtcute's.
  // Returns an error message or null; records mtcute's int53 parameters.
  function checkDefinition(form) {
    const e = entryOf(form);
    const ours = form.params.map(manifestParam);
    const theirs = e.arguments.map(mtParam);
    for (const a of e.arguments) if (a.type === "int53") INT53.add(`${form.name}.${a.name}`);
    if (ours.join(" ") === theirs.join(" ")) return null;
    const problems = [];
    const mine = new Map(form.params.map((p) => [p.name, manifestParam(p)]));
    const lib = new Map(e.arguments.map((a) => [a.name, mtParam(a)]));
    for (const [n, s] of mine) {
      if (!lib.has(n)) problems.push(`${n} missing in mtcute`);
      else if (lib.get(n) !== s) problems.push(`${n}: manifest ${s.slice(n.length + 1)}, mtcute ${lib.get(n).slice(n.length + 1)}`);
    }
    for (const n of lib.keys()) if (!mine.has(n)) problems.push(`${n} only in mtcute (${lib.get(n).slice(n.length + 1)})`);
    if (!problems.length) problems.push("same parameters in another order");
    return (
      `parameters differ from mtcute's ${e.name}#${hexId(e.id)}: ${problems.join("; ")} ` +
      `(manifest: ${ours.join(" ") || "-"}; mtcute: ${theirs.join(" ") || "-"})`
    );
  }

  // True when mtcute's int53 writer encodes v exactly.
  function int53Exact(v) {
    const w = mt.TlBinaryWriter.manual(8);
    w.int53(v);
    return Buffer.from(w.result()).readBigInt64LE(0) === BigInt(v);
  }

  function int53Value(gen) {
    const r = gen.rng;
    for (;;) {
      let v;
      if (r.random() < 0.3) v = r.choice(INT53_EDGES);
      else {
        v = (r.u32() & 0x1fffff) * 2 ** 32 + r.u32(); // 0 .. 2^53 - 1
        if (r.random() < 0.5) v = -v;
      }
      if (v === 0) v = 0; // never -0
      if (int53Exact(v)) return v;
    }
  }

  const long = (v) => mt.Long.fromBits(Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n)));
  // Checked once: the Long conversion keeps the edge values.
  for (const v of LONG_EDGES) {
    if (long(v).toString() !== v.toString()) throw new Error(`Long conversion of ${v} gave ${long(v)}`);
  }

  // The mtcute object for a form from [manifest param, value] entries (undefined: absent).
  function build(form, list) {
    const obj = { _: entryOf(form).name };
    for (const [p, v] of list) if (v !== undefined) obj[camel(p.name)] = v;
    return obj;
  }

  function serialize(obj) {
    const size = mt.TlSerializationCounter.countNeededBytes(W, obj);
    const w = mt.TlBinaryWriter.alloc(W, size);
    w.object(obj);
    return Buffer.from(w.result());
  }

  function boolVectors() {
    return [
      ["boolTrue", true],
      ["boolFalse", false],
    ].map(([name, v]) => ({ name, value: v, hex: serialize({ _: "jsonBool", value: v }).subarray(4).toString("hex") }));
  }

  // Differences worth knowing that are no parameter mismatch (printed to stderr).
  function notes(manifest) {
    const out = [];
    for (const f of manifest.forms) {
      const e = entryOf(f);
      if (!e) {
        const other = byName.get(f.name) || byName.get(`mt_${f.name}`);
        if (other) out.push(`${f.name}#${hexId(f.id)} is unknown, mtcute has ${other.name}#${hexId(other.id)}`);
        continue;
      }
      if (!knows(f)) out.push(`${f.name}: mtcute's schema has ${e.name} but its writer map does not`);
      if (e.name !== f.name && e.name !== `mt_${f.name}`) out.push(`${f.name}#${hexId(f.id)} is ${e.name} in mtcute`);
      const r = resultOf(e);
      if (r !== f.result && r.replace(/^mt_/, "") !== f.result) out.push(`${f.name}: result ${f.result}, mtcute's ${r}`);
    }
    if (INT53.size) out.push(`int53 in mtcute (JS numbers): ${[...INT53].sort().join(", ")}`);
    return out;
  }

  return {
    script: "mtcute_vectors.js",
    client: `mtcute ${mt.version}`,
    layer: LAYER,
    libLayer: mt.api.l === mt.layer ? mt.layer : `${mt.layer} (api-schema.json says ${mt.api.l})`,
    label: `mtcute ${mt.version}`,
    knows,
    checkDefinition,
    emptyVector: (p) => EMPTY_VECTORS.has(p),
    nonzero: () => false,
    nonEmptyFlaggedVectors: true,
    scalar: (gen, t, p) => {
      if (t !== "long" || !INT53.has(p)) return undefined;
      const v = int53Value(gen);
      return [BigInt(v), v];
    },
    long,
    intN: (b) => b,
    rawQueries: RAW_QUERIES,
    build,
    serialize,
    boolVectors,
    notes,
  };
}

loadMtcute()
  .then((mt) => run(makeLib(mt)))
  .catch((e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(2);
  });
