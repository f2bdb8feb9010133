#!/usr/bin/env node
// Oracle vectors for mtcall's TL codec, produced by GramJS (npm `telegram`, API layer 198).
//
// Usage: node gramjs_vectors.js MANIFEST.json OUT.json
//
// MANIFEST.json is mtcall's schema subset (`cargo run -p mtcall-tl --example schema_json`):
//   {"layers": [...], "forms": [{"name", "id", "layers", "function", "mtproto", "result",
//                                "params": [{"name", "type", "flag": null | {"field", "bit"},
//                                            "stored"}]}]}
// For every form that applies at layer 198, the script looks the constructor id up in GramJS's
// `tlobjects`. Unknown ids are listed under "unknown". For known ones it builds four values with
// a seeded PRNG (variant 0: every conditional parameter present, 1: all absent, 2-3: random),
// constructs the GramJS object and serializes it with `getBytes()`. boolTrue/boolFalse are core
// types in GramJS (no class); their bytes are taken from GramJS's own Bool writer.
//
// OUT.json:
//   {"client": "gramjs 2.26.22", "layer": 198,
//    "vectors": [{"name": TL name, "value": JSON value, "hex": boxed bytes (id LE + body)}],
//    "unknown": [TL names GramJS does not know],
//    "errors": [{"name", "error"}]}
// The JSON value is what mtcall's serde structs read: an object of the stored params by TL name
// (no "_" at top level, no flags fields); absent conditional -> null; `true` flags -> bool;
// int/double -> number; long -> integer literal (exact digits, never a float); string -> string;
// bytes/int128/int256 -> array of byte numbers; Bool -> bool; vectors -> arrays; nested boxed ->
// {"_": TL name, ...params}; nested bare -> {...params}; raw `!X`/`Object` -> array of the inner
// object's bytes.
//
// Errors raised by the library while constructing or serializing, and forms whose parameters do
// not match GramJS's definition, are recorded under "errors" and make the script exit with
// status 1 (after writing OUT.json).

"use strict";

const fs = require("fs");
const { Api } = require("telegram");
const { tlobjects, LAYER: LIB_LAYER } = require("telegram/tl/AllTLObjects");
const gh = require("telegram/tl/generationHelpers");
const { readBigIntFromBuffer } = require("telegram/Helpers");
// `require("telegram").version` still says 2.26.21 in 2.26.22; the package file is right.
const VERSION = require("telegram/package.json").version;

const LAYER = 198;
const CLIENT = `gramjs ${VERSION}`;
const MAX_DEPTH = 3; // objects nested deeper than this get no conditionals and empty vectors
const VARIANTS = 4;
const BOOL_NAMES = ["boolTrue", "boolFalse"];
const PRIMITIVES = new Set(["int", "long", "double", "string", "bytes", "int128", "int256", "Bool", "true"]);

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

const UNICODE = Array.from("äöüßéçñÿ Привет мир 你好世界 ☎✓€ 😀🎉📞\u00a0");
const ASCII = Array.from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.");
const INT_EDGES = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 255, 256, 65535];
const LONG_EDGES = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n + 1n), 2n ** 32n, -(2n ** 31n) - 1n];
const DOUBLE_EDGES = [0.0, 1.0, -1.5, 0.1, 1e22, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, 123456.789, -2.2250738585072014e-308];
const BYTES_LENGTHS = [0, 1, 2, 3, 4, 253, 254, 255, 256, 600];

// A BigInt as GramJS's big-integer value for a `long` (via its own reader, so no direct
// dependency on the big-integer package).
function longToLib(v) {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(v);
  return readBigIntFromBuffer(b, true, true);
}

// ---- PRNG: mulberry32 seeded with FNV-1a of a string --------------------------------------
function rngFrom(seedText) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(seedText, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let a = h;
  const u32 = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const random = () => u32() / 4294967296;
  return {
    u32,
    random,
    below: (n) => Math.floor(random() * n),
    range: (lo, hi) => lo + Math.floor(random() * (hi - lo + 1)), // inclusive
    choice(xs) {
      return xs[Math.floor(random() * xs.length)];
    },
  };
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

function parseParamType(t) {
  const m = /^([Vv])ector<(.+)>$/.exec(t);
  if (m) return { isVector: true, useVectorId: m[1] === "V", type: m[2].replace(/^!/, "") };
  return { isVector: false, useVectorId: null, type: t.replace(/^!/, "") };
}

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

// ---- the manifest at GramJS's layer ---------------------------------------------------------
function loadManifest(doc) {
  const forms = doc.forms.filter((f) => f.layers.includes(LAYER));
  const allResults = new Set(doc.forms.filter((f) => !f.function).map((f) => f.result));
  // Forms whose parameters do not match GramJS (checkDefinition) are reported as errors and
  // not used inside other values.
  const mismatch = new Map();
  for (const f of forms) {
    if (tlobjects[f.id] && !BOOL_NAMES.includes(f.name)) {
      const err = checkDefinition(f);
      if (err) mismatch.set(f.name, err);
    }
  }
  const known = forms.filter((f) => !f.function && tlobjects[f.id] && !mismatch.has(f.name));
  const byResult = new Map();
  const byName = new Map();
  for (const f of known) {
    if (!byResult.has(f.result)) byResult.set(f.result, []);
    byResult.get(f.result).push(f);
    byName.set(f.name, f);
  }
  return { forms, allResults, mismatch, byResult, byName };
}

const isBareName = (t) => {
  const c = t.split(".").pop().charAt(0);
  return c !== c.toUpperCase();
};
const isRaw = (t) => t.startsWith("!") || t === "Object";
const elemType = (t) => (/^[Vv]ector</.test(t) ? t.slice(7, -1) : null);

// [candidate forms, boxed?] for an object type; no candidates = unsupported.
function objectForms(m, t) {
  if (t.startsWith("%")) {
    const fs = m.byResult.get(t.slice(1)) || [];
    return [fs.length === 1 ? fs : [], false];
  }
  if (isBareName(t)) {
    const f = m.byName.get(t);
    return [f ? [f] : [], false];
  }
  if (!m.allResults.has(t)) return [[], true];
  return [m.byResult.get(t) || [], true];
}

// ---- value generation: [json, GramJS value] pairs -------------------------------------------
class Gen {
  constructor(manifest, rng, mode) {
    this.m = manifest;
    this.rng = rng;
    this.mode = mode; // 'all' | 'none' | 'random'
  }

  supported(t) {
    if (elemType(t) !== null) return true; // an unsupported element type gives an empty vector
    if (PRIMITIVES.has(t) || isRaw(t)) return true;
    return objectForms(this.m, t)[0].length > 0;
  }

  int32() {
    const r = this.rng;
    return r.random() < 0.3 ? r.choice(INT_EDGES) : r.u32() | 0;
  }

  int64() {
    const r = this.rng;
    if (r.random() < 0.3) return r.choice(LONG_EDGES);
    return BigInt.asIntN(64, (BigInt(r.u32()) << 32n) | BigInt(r.u32()));
  }

  double() {
    const r = this.rng;
    if (r.random() < 0.4) return r.choice(DOUBLE_EDGES);
    const v = (r.random() * 2 - 1) * 1e9;
    return v === 0 ? 0 : v; // never -0 (JSON would drop the sign)
  }

  rawBytes(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.rng.below(256);
    return b;
  }

  byteString() {
    const r = this.rng;
    return this.rawBytes(r.random() < 0.5 ? r.choice(BYTES_LENGTHS) : r.range(0, 600));
  }

  string() {
    const r = this.rng;
    const pick = (alphabet, n) => Array.from({ length: n }, () => r.choice(alphabet)).join("");
    switch (r.below(6)) {
      case 0:
        return "";
      case 1:
        return pick(ASCII, r.range(1, 20));
      case 2:
        return pick(UNICODE.concat(ASCII), r.range(1, 30));
      case 3: // long ASCII: the 254-byte prefix switch
        return pick(ASCII, r.choice([252, 253, 254, 255, 256, 300, 600]));
      case 4: // long multi-byte
        return pick(UNICODE, r.range(100, 299));
      default:
        return pick(ASCII, r.choice([1, 2, 3, 4, 5]));
    }
  }

  // [json, lib] for a required value of type t inside an object at `depth`; `path` names the
  // parameter (form.param) for the quirk lists.
  value(t, depth, path) {
    const e = elemType(t);
    if (e !== null) {
      let n;
      if (depth > MAX_DEPTH || EMPTY_VECTORS.has(path) || !this.supported(e)) n = 0;
      else if (this.mode === "all") n = this.rng.range(1, depth < 2 ? 3 : 2);
      else n = this.rng.range(0, depth < 2 ? 3 : 2);
      const items = Array.from({ length: n }, () => this.value(e, depth, path));
      return [items.map((x) => x[0]), items.map((x) => x[1])];
    }
    switch (t) {
      case "int": {
        let v = this.int32();
        while (v === 0 && nonzero(path)) v = this.int32();
        return [v, v];
      }
      case "long": {
        let v = this.int64();
        while (v === 0n && nonzero(path)) v = this.int64();
        return [v, longToLib(v)];
      }
      case "double": {
        const v = this.double();
        return [v, v];
      }
      case "string": {
        const v = this.string();
        return [v, v];
      }
      case "bytes": {
        const v = this.byteString();
        return [Array.from(v), v];
      }
      case "int128":
      case "int256": {
        const b = this.rawBytes(t === "int128" ? 16 : 32);
        return [Array.from(b), readBigIntFromBuffer(b, true, true)];
      }
      case "Bool": {
        const v = this.rng.random() < 0.5;
        return [v, v];
      }
      case "true":
        return [true, true];
    }
    if (isRaw(t)) {
      const obj = this.rng.choice(RAW_QUERIES)();
      return [Array.from(obj.getBytes()), obj];
    }
    let [forms, boxed] = objectForms(this.m, t);
    if (!forms.length) throw new Error(`no constructor known for required type ${t}`);
    if (depth + 1 > MAX_DEPTH) {
      // Past the depth bound prefer the constructors with fewest required objects.
      const cost = (f) => this.requiredObjects(f);
      const low = Math.min(...forms.map(cost));
      forms = forms.filter((f) => cost(f) === low);
    }
    return this.obj(this.rng.choice(forms), depth + 1, boxed);
  }

  requiredObjects(form) {
    return form.params.filter(
      (p) => p.stored && !p.flag && elemType(p.type) === null && !PRIMITIVES.has(p.type) && !isRaw(p.type)
    ).length;
  }

  // [json, GramJS object] for a constructor form at `depth` (0 = top level).
  obj(form, depth, boxed) {
    const params = form.params.filter((p) => p.stored);
    const key = (p) => `${p.flag.field}.${p.flag.bit}`;
    const groups = new Map();
    for (const p of params) {
      if (!p.flag) continue;
      if (!groups.has(key(p))) groups.set(key(p), []);
      groups.get(key(p)).push(p);
    }
    const present = new Map();
    for (const [k, ps] of groups) {
      let on;
      if (depth > MAX_DEPTH || this.mode === "none") on = false;
      else if (this.mode === "all") on = true;
      else on = this.rng.random() < 0.5;
      // Params sharing a bit go together; one unsupported type keeps the group absent.
      if (ps.some((p) => !this.supported(p.type))) on = false;
      present.set(k, on);
    }
    const js = boxed ? { _: form.name } : {};
    const args = {};
    for (const p of params) {
      const n = libName(p.name);
      if (p.flag) {
        const on = present.get(key(p));
        if (p.type === "true") {
          js[p.name] = on;
          args[n] = on ? true : undefined;
          continue;
        }
        if (!on) {
          js[p.name] = null;
          args[n] = undefined;
          continue;
        }
      }
      const [j, v] = this.value(p.type, depth, `${form.name}.${p.name}`);
      js[p.name] = j;
      // A manifest `string` that GramJS types as `bytes` is given as its UTF-8 Buffer.
      const toBuf = (x) => (typeof x === "string" ? Buffer.from(x, "utf8") : x);
      const libType = ARGS.get(form.id >>> 0)[n].type;
      args[n] = libType === "bytes" ? (Array.isArray(v) ? v.map(toBuf) : toBuf(v)) : v;
    }
    const Cls = tlobjects[form.id];
    return [js, new Cls(args)];
  }
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

// ---- output ---------------------------------------------------------------------------------
// JSON with BigInt written as exact integer digits.
function toJson(x) {
  if (x === null || x === undefined) return "null";
  switch (typeof x) {
    case "bigint":
      return x.toString();
    case "number":
      if (!Number.isFinite(x)) throw new Error(`non-finite number ${x}`);
      return JSON.stringify(x);
    case "boolean":
    case "string":
      return JSON.stringify(x);
  }
  if (Array.isArray(x)) return `[${x.map(toJson).join(",")}]`;
  if (Buffer.isBuffer(x)) throw new Error("a Buffer reached the JSON writer");
  return `{${Object.entries(x)
    .map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`)
    .join(",")}}`;
}

function dump(out) {
  const head = Object.keys(out)
    .filter((k) => k !== "vectors")
    .map((k) => ` ${JSON.stringify(k)}: ${toJson(out[k])}`)
    .join(",\n");
  const vectors = out.vectors.map((v) => "  " + toJson(v)).join(",\n");
  return `{\n${head},\n "vectors": [\n${vectors}\n ]\n}\n`;
}

// boolTrue/boolFalse are core in GramJS: take their bytes from its Bool writer (a jsonBool's
// body is exactly one Bool).
function boolVectors() {
  return [
    ["boolTrue", true],
    ["boolFalse", false],
  ].map(([name, v]) => ({ name, value: v, hex: new Api.JsonBool({ value: v }).getBytes().subarray(4).toString("hex") }));
}

function main() {
  if (process.argv.length !== 4) {
    console.error("usage: node gramjs_vectors.js MANIFEST.json OUT.json");
    process.exit(2);
  }
  if (LIB_LAYER !== LAYER) {
    console.error(`GramJS ${VERSION} is at layer ${LIB_LAYER}, expected ${LAYER}`);
    process.exit(2);
  }
  const manifest = loadManifest(JSON.parse(fs.readFileSync(process.argv[2], "utf8")));
  const vectors = [];
  const seen = new Set();
  const unknown = [];
  const errors = [];
  for (const form of manifest.forms) {
    const name = form.name;
    if (BOOL_NAMES.includes(name)) {
      if (name === "boolTrue") vectors.push(...boolVectors());
      continue;
    }
    if (!tlobjects[form.id]) {
      unknown.push(name);
      continue;
    }
    if (manifest.mismatch.has(name)) {
      errors.push({ name, error: manifest.mismatch.get(name) });
      continue;
    }
    for (let variant = 0; variant < VARIANTS; variant++) {
      const mode = ["all", "none", "random", "random"][variant];
      const rng = rngFrom(`${name}#${(form.id >>> 0).toString(16).padStart(8, "0")}/${variant}`);
      let vector;
      try {
        const [js, obj] = new Gen(manifest, rng, mode).obj(form, 0, true);
        delete js._;
        const data = getBytesChecked(obj);
        if (data.readUInt32LE(0) !== form.id >>> 0) {
          throw new Error(`bytes start with ${data.subarray(0, 4).toString("hex")}, not the constructor id`);
        }
        vector = { name, value: js, hex: data.toString("hex") };
      } catch (e) {
        const where = e && e.stack ? e.stack.split("\n").slice(0, 4).join("\n") : String(e);
        errors.push({ name, error: `variant ${variant}: ${where}` });
        continue;
      }
      const text = toJson(vector);
      if (!seen.has(text)) {
        // forms without params give one vector, not four
        seen.add(text);
        vectors.push(vector);
      }
    }
  }
  const out = { client: CLIENT, layer: LAYER, unknown, errors, vectors };
  fs.writeFileSync(process.argv[3], dump(out));
  console.error(
    `${CLIENT} (layer ${LAYER}): ${vectors.length} vectors, unknown: ${unknown.join(", ") || "-"}, errors: ${errors.length}`
  );
  for (const e of errors) console.error(`error: ${e.name}: ${e.error}`);
  process.exit(errors.length ? 1 : 0);
}

main();
