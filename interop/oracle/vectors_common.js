// Shared part of the JavaScript oracle scripts (gramjs_vectors.js, mtcute_vectors.js): the
// manifest at the library's layer, the seeded value generator, the JSON output and the driver.
// Each script supplies a `lib` adapter for its library (see `run` below for what it holds).
//
// MANIFEST.json is mtcall's schema subset (`cargo run -p mtcall-tl --example schema_json`):
//   {"layers": [...], "forms": [{"name", "id", "layers", "function", "mtproto", "result",
//                                "params": [{"name", "type", "flag": null | {"field", "bit"},
//                                            "stored"}]}]}
// For every form that applies at the library's layer, the script asks the library whether it
// knows the constructor id. Unknown ids are listed under "unknown". For known ones it builds four
// values with a seeded PRNG (variant 0: every conditional parameter present, 1: all absent, 2-3:
// random), constructs the library's object and serializes it with the library. boolTrue/boolFalse
// are core types in the libraries (no class); their bytes come from the library's Bool writer.
//
// OUT.json:
//   {"client": "<library> <version>", "layer": N,
//    "vectors": [{"name": TL name, "value": JSON value, "hex": boxed bytes (id LE + body)}],
//    "unknown": [TL names the library does not know],
//    "errors": [{"name", "error"}]}
// The JSON value is what mtcall's serde structs read: an object of the stored params by TL name
// (no "_" at top level, no flags fields); absent conditional -> null; `true` flags -> bool;
// int/double -> number; long -> integer literal (exact digits, never a float); string -> string;
// bytes/int128/int256 -> array of byte numbers; Bool -> bool; vectors -> arrays; nested boxed ->
// {"_": TL name, ...params}; nested bare -> {...params}; raw `!X`/`Object` -> array of the inner
// object's bytes.
//
// Errors raised by the library while constructing or serializing, and forms whose parameters do
// not match the library's definition, are recorded under "errors" and make the script exit with
// status 1 (after writing OUT.json).

"use strict";

const fs = require("fs");

const MAX_DEPTH = 3; // objects nested deeper than this get no conditionals and empty vectors
const VARIANTS = 4;
const BOOL_NAMES = ["boolTrue", "boolFalse"];
const PRIMITIVES = new Set(["int", "long", "double", "string", "bytes", "int128", "int256", "Bool", "true"]);

const UNICODE = Array.from("äöüßéçñÿ Привет мир 你好世界 ☎✓€ 😀🎉📞\u00a0");
const ASCII = Array.from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.");
const INT_EDGES = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 255, 256, 65535];
const LONG_EDGES = [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n + 1n), 2n ** 32n, -(2n ** 31n) - 1n];
const DOUBLE_EDGES = [0.0, 1.0, -1.5, 0.1, 1e22, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, 123456.789, -2.2250738585072014e-308];
const BYTES_LENGTHS = [0, 1, 2, 3, 4, 253, 254, 255, 256, 600];

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

// A manifest parameter type as {isVector, useVectorId (Vector<> boxed, vector<> bare), type}.
function parseParamType(t) {
  const m = /^([Vv])ector<(.+)>$/.exec(t);
  if (m) return { isVector: true, useVectorId: m[1] === "V", type: m[2].replace(/^!/, "") };
  return { isVector: false, useVectorId: null, type: t.replace(/^!/, "") };
}

// ---- the manifest at the library's layer ----------------------------------------------------
// lib.knows(form): the library has this constructor id; lib.checkDefinition(form): an error
// message when the library's parameters differ from the form's, else null.
function loadManifest(doc, lib) {
  const forms = doc.forms.filter((f) => f.layers.includes(lib.layer));
  const allResults = new Set(doc.forms.filter((f) => !f.function).map((f) => f.result));
  // Forms whose parameters do not match the library (checkDefinition) are reported as errors
  // and not used inside other values.
  const mismatch = new Map();
  for (const f of forms) {
    if (lib.knows(f) && !BOOL_NAMES.includes(f.name)) {
      const err = lib.checkDefinition(f);
      if (err) mismatch.set(f.name, err);
    }
  }
  const known = forms.filter((f) => !f.function && lib.knows(f) && !mismatch.has(f.name));
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

// ---- value generation: [json, library value] pairs ------------------------------------------
class Gen {
  constructor(manifest, lib, rng, mode) {
    this.m = manifest;
    this.lib = lib;
    this.rng = rng;
    this.mode = mode; // 'all' | 'none' | 'random'
  }

  supported(t) {
    if (elemType(t) !== null) return true; // an unsupported element type gives an empty vector
    if (PRIMITIVES.has(t) || isRaw(t)) return true;
    return objectForms(this.m, t)[0].length > 0;
  }

  // A conditional parameter can be present: with lib.nonEmptyFlaggedVectors (the library takes
  // an empty conditional vector for an absent one) a vector must be able to have elements.
  presentable(p, path) {
    if (!this.supported(p.type)) return false;
    const e = elemType(p.type);
    if (e === null || !this.lib.nonEmptyFlaggedVectors) return true;
    return this.supported(e) && !this.lib.emptyVector(path);
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
  // parameter (form.param) for the library's quirks; `nonEmpty`: a vector gets elements.
  value(t, depth, path, nonEmpty = false) {
    const e = elemType(t);
    if (e !== null) {
      let n;
      if (depth > MAX_DEPTH || this.lib.emptyVector(path) || !this.supported(e)) n = 0;
      else if (this.mode === "all" || nonEmpty) n = this.rng.range(1, depth < 2 ? 3 : 2);
      else n = this.rng.range(0, depth < 2 ? 3 : 2);
      const items = Array.from({ length: n }, () => this.value(e, depth, path));
      return [items.map((x) => x[0]), items.map((x) => x[1])];
    }
    if (this.lib.scalar) {
      const own = this.lib.scalar(this, t, path);
      if (own !== undefined) return own;
    }
    switch (t) {
      case "int": {
        let v = this.int32();
        while (v === 0 && this.lib.nonzero(path)) v = this.int32();
        return [v, v];
      }
      case "long": {
        let v = this.int64();
        while (v === 0n && this.lib.nonzero(path)) v = this.int64();
        return [v, this.lib.long(v)];
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
        return [Array.from(b), this.lib.intN(b)];
      }
      case "Bool": {
        const v = this.rng.random() < 0.5;
        return [v, v];
      }
      case "true":
        return [true, true];
    }
    if (isRaw(t)) {
      const obj = this.rng.choice(this.lib.rawQueries)();
      return [Array.from(this.lib.serialize(obj)), obj];
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

  // [json, library object] for a constructor form at `depth` (0 = top level).
  obj(form, depth, boxed) {
    const params = form.params.filter((p) => p.stored);
    const key = (p) => `${p.flag.field}.${p.flag.bit}`;
    const path = (p) => `${form.name}.${p.name}`;
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
      if (ps.some((p) => !this.presentable(p, path(p)))) on = false;
      present.set(k, on);
    }
    const js = boxed ? { _: form.name } : {};
    // [manifest param, library value (undefined: absent)] for the stored params, in order.
    const entries = [];
    for (const p of params) {
      if (p.flag) {
        const on = present.get(key(p));
        if (p.type === "true") {
          js[p.name] = on;
          entries.push([p, on ? true : undefined]);
          continue;
        }
        if (!on) {
          js[p.name] = null;
          entries.push([p, undefined]);
          continue;
        }
      }
      const nonEmpty = Boolean(p.flag) && this.lib.nonEmptyFlaggedVectors;
      const [j, v] = this.value(p.type, depth, path(p), nonEmpty);
      js[p.name] = j;
      entries.push([p, v]);
    }
    return [js, this.lib.build(form, entries, boxed)];
  }
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

// ---- driver ---------------------------------------------------------------------------------
// lib: {
//   script, client, layer    usage text, the "client" and "layer" of OUT.json
//   libLayer, label          the library's own layer, and its name for the layer-mismatch message
//   knows(form), checkDefinition(form)            see loadManifest
//   emptyVector(path), nonzero(path)              quirks: vectors always generated empty,
//                                                 int/long never generated as 0
//   nonEmptyFlaggedVectors   present conditional vectors always get elements
//   scalar(gen, t, path)     optional: [json, lib] for a primitive, or undefined for the default
//   long(bigint), intN(Buffer)                    library values for long and int128/int256
//   rawQueries               constructors of the inner objects of `!X` / `Object`
//   build(form, entries, boxed)                   the library object (entries: see Gen.obj)
//   serialize(obj)           the boxed bytes as a Buffer
//   boolVectors()            the boolTrue/boolFalse vectors
//   notes()                  optional: lines printed to stderr after the summary
// }
function run(lib) {
  if (process.argv.length !== 4) {
    console.error(`usage: node ${lib.script} MANIFEST.json OUT.json`);
    process.exit(2);
  }
  if (lib.libLayer !== lib.layer) {
    console.error(`${lib.label} is at layer ${lib.libLayer}, expected ${lib.layer}`);
    process.exit(2);
  }
  const manifest = loadManifest(JSON.parse(fs.readFileSync(process.argv[2], "utf8")), lib);
  const vectors = [];
  const seen = new Set();
  const unknown = [];
  const errors = [];
  for (const form of manifest.forms) {
    const name = form.name;
    if (BOOL_NAMES.includes(name)) {
      if (name === "boolTrue") vectors.push(...lib.boolVectors());
      continue;
    }
    if (!lib.knows(form)) {
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
        const [js, obj] = new Gen(manifest, lib, rng, mode).obj(form, 0, true);
        delete js._;
        const data = lib.serialize(obj);
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
  const out = { client: lib.client, layer: lib.layer, unknown, errors, vectors };
  fs.writeFileSync(process.argv[3], dump(out));
  console.error(
    `${lib.client} (layer ${lib.layer}): ${vectors.length} vectors, unknown: ${unknown.join(", ") || "-"}, errors: ${errors.length}`
  );
  for (const e of errors) console.error(`error: ${e.name}: ${e.error}`);
  if (lib.notes) for (const line of lib.notes(manifest)) console.error(`note: ${line}`);
  process.exit(errors.length ? 1 : 0);
}

module.exports = { run, parseParamType, rngFrom, PRIMITIVES, BOOL_NAMES, MAX_DEPTH, VARIANTS, LONG_EDGES };
