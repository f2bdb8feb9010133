#!/usr/bin/env node
// Oracle vectors for mtcall's TL codec, produced by GramJS (npm `telegram`, API layer 198).
//
// Usage: node gramjs_vectors.js MANIFEST.json OUT.json
//
// The manifest, the generated values, OUT.json and the exit status are described in
// vectors_common.js (shared with mtcute_vectors.js). Here: GramJS's side. For every form that
// applies at layer 198, the constructor id is looked up in GramJS's `tlobjects`; the GramJS
// object is constructed from the generated values and serialized with `getBytes()`.
// boolTrue/boolFalse are core types in GramJS (no class); their bytes are taken from GramJS's own
// Bool writer. OUT.json's "client" is "gramjs 2.26.22".

"use strict";

const { Api } = require("telegram");
const { tlobjects, LAYER: LIB_LAYER } = require("telegram/tl/AllTLObjects");
const gh = require("telegram/tl/generationHelpers");
const { readBigIntFromBuffer } = require("telegram/Helpers");
const { run, parseParamType } = require("./vectors_common");
// `require("telegram").version` still says 2.26.21 in 2.26.22; the package file is right.
const VERSION = require("telegram/package.json").version;

const LAYER = 198;

// GramJS quirks, kept small and explicit:
// - `vector<future_salt>` (future_salts.salts) is a bare vector of bare future_salt, but GramJS's
//   getBytes() writes every element with its constructor id (its vector path always calls the
//   element's boxed getBytes()). Non-empty values would give bytes that are not the MTProto
//   encoding, so this vector is always generated empty.
const EMPTY_VECTORS = new Set(["future_salts.salts"]);
// - A falsy `random_id` is replaced by GramJS with a random 64-bit value (even for `int` fields,
//   as in phone.requestCall), and GramJS's patched Message classes throw "id is a required
//   attribute for Message" for id 0; these are never generated as 0 ("*" = any form).
const NONZERO = new Set(["*.random_id", "messageEmpty.id", "messageService.id"]);
const nonzero = (path) => NONZERO.has(path) || NONZERO.has("*." + path.split(".").pop());
// - GramJS's schema types some MTProto fields as `string` where the manifest says `bytes`
//   (msgs_state_info.info, msgs_all_info.info): same wire form, but arbitrary bytes are no JS
//   string, so GramJS gets a Buffer and its validate() logs a CastError for that argument, which
//   is expected for the argument names collected here (see checkDefinition); any other output
//   on console.error during getBytes() is recorded as an error.
const STRING_GIVEN_BYTES = new Set();

// Parameterless functions used as the inner object of `!X` / `Object` parameters.
const RAW_QUERIES = [() => new Api.help.GetConfig(), () => new Api.help.GetNearestDc(), () => new Api.updates.GetState()];

// A BigInt as GramJS's big-integer value for a `long` (via its own reader, so no direct
// dependency on the big-integer package).
function longToLib(v) {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return readBigIntFromBuffer(b, true, true);
}

// ---- GramJS's own view of each definition ---------------------------------------------------
// argsConfig (camelCase name -> {type, isVector, useVectorId, isFlag, flagName, flagIndex,
// flagIndicator}) as GramJS parses its bundled schemas; api.js builds its classes from these.
const ARGS = new Map();
for (const src of [require("telegram/tl/apiTl.js"), require("telegram/tl/schemaTl.js")]) {
  for (const d of gh.parseTl(src, LAYER)) ARGS.set(d.constructorId >>> 0, d.argsConfig);
}

// GramJS's property name for a TL parameter: snake_case -> camelCase (`self` stays `self`).
const libName = (name) => gh.variableSnakeToCamelCase(name);

// The stored manifest params must be GramJS's args with the same types and flag bits.
// Returns an error message or null.
function checkDefinition(form) {
  const args = ARGS.get(form.id >>> 0);
  if (!args) return "GramJS has a class but no parsed definition";
  const problems = [];
  const unstored = new Set(form.params.filter((p) => !p.stored).map((p) => libName(p.name)));
  const ours = new Set();
  for (const p of form.params) {
    if (!p.stored) continue;
    const n = libName(p.name);
    ours.add(n);
    const a = args[n];
    if (!a) {
      problems.push(`${p.name} missing in GramJS`);
      continue;
    }
    const want = parseParamType(p.type);
    let have = a.type;
    if (have === "FutureSalt" && want.type === "future_salt") have = "future_salt"; // GramJS renames it
    const same = (x, y) => x === y || (["string", "bytes"].includes(x) && ["string", "bytes"].includes(y));
    if (have === "string" && want.type === "bytes") STRING_GIVEN_BYTES.add(n);
    const flagOk = p.flag ? a.isFlag && a.flagName === p.flag.field && a.flagIndex === p.flag.bit : !a.isFlag;
    if (!same(have, want.type) || a.isVector !== want.isVector || (want.isVector && a.useVectorId !== want.useVectorId) || !flagOk) {
      const gf = a.isFlag ? `${a.flagName}.${a.flagIndex}?` : "";
      const gt = a.isVector ? `${a.useVectorId ? "Vector" : "vector"}<${a.type}>` : a.type;
      const mf = p.flag ? `${p.flag.field}.${p.flag.bit}?` : "";
      problems.push(`${p.name}: manifest ${mf}${p.type}, GramJS ${gf}${gt}`);
    }
  }
  for (const n of Object.keys(args)) {
    if (!args[n].flagIndicator && !ours.has(n) && !unstored.has(n)) problems.push(`${n} only in GramJS`);
  }
  return problems.length ? `parameters differ from GramJS's definition: ${problems.join("; ")}` : null;
}

// The GramJS object for a form from [manifest param, value] entries (undefined: absent).
function build(form, entries) {
  const args = {};
  for (const [p, v] of entries) {
    const n = libName(p.name);
    if (v === undefined) {
      args[n] = undefined;
      continue;
    }
    // A manifest `string` that GramJS types as `bytes` is given as its UTF-8 Buffer.
    const toBuf = (x) => (typeof x === "string" ? Buffer.from(x, "utf8") : x);
    const libType = ARGS.get(form.id >>> 0)[n].type;
    args[n] = libType === "bytes" ? (Array.isArray(v) ? v.map(toBuf) : toBuf(v)) : v;
  }
  const Cls = tlobjects[form.id];
  return new Cls(args);
}

// obj.getBytes(), failing on anything GramJS logs through console.error except the expected
// CastErrors for STRING_GIVEN_BYTES arguments.
function getBytesChecked(obj) {
  const logged = [];
  const original = console.error;
  console.error = (...xs) => logged.push(xs);
  let data;
  try {
    data = obj.getBytes();
  } finally {
    console.error = original;
  }
  const unexpected = logged.filter((xs) => {
    const e = xs[0];
    const m = e && e.name === "CastError" && /^Found wrong type for (\w+)\. expected string /.exec(e.message);
    return !(m && STRING_GIVEN_BYTES.has(m[1]));
  });
  if (unexpected.length) {
    throw new Error(`GramJS logged: ${unexpected.map((xs) => xs.map(String).join(" ")).join(" | ")}`);
  }
  return data;
}

// boolTrue/boolFalse are core in GramJS: take their bytes from its Bool writer (a jsonBool's
// body is exactly one Bool).
function boolVectors() {
  return [
    ["boolTrue", true],
    ["boolFalse", false],
  ].map(([name, v]) => ({ name, value: v, hex: new Api.JsonBool({ value: v }).getBytes().subarray(4).toString("hex") }));
}

run({
  script: "gramjs_vectors.js",
  client: `gramjs ${VERSION}`,
  layer: LAYER,
  libLayer: LIB_LAYER,
  label: `GramJS ${VERSION}`,
  knows: (form) => Boolean(tlobjects[form.id]),
  checkDefinition,
  emptyVector: (path) => EMPTY_VECTORS.has(path),
  nonzero,
  nonEmptyFlaggedVectors: false,
  long: longToLib,
  intN: (b) => readBigIntFromBuffer(b, true, true),
  rawQueries: RAW_QUERIES,
  build,
  serialize: getBytesChecked,
  boolVectors,
});
