"""The library-independent part of the Python oracle scripts (telethon_vectors.py,
pyrogram_vectors.py): reading mtcall's manifest, generating values with a seeded PRNG, the
vector loop and the output format. Each script supplies a `Library` for its client library.

MANIFEST.json is mtcall's schema subset (`cargo run -p mtcall-tl --example schema_json`):
    {"layers": [...], "forms": [{"name", "id", "layers", "function", "mtproto", "result",
                                 "params": [{"name", "type", "flag": null | {"field", "bit"},
                                             "stored"}]}]}
For every form that applies at the library's layer, the script looks the constructor id up in
the library. Unknown ids are listed under "unknown". For known ones it builds four values with a
seeded PRNG (variant 0: every conditional parameter present, 1: all absent, 2-3: random),
constructs the library's object and serializes it with the library.

OUT.json:
    {"client": "NAME VERSION", "layer": N,
     "vectors": [{"name": TL name, "value": JSON value, "hex": boxed bytes (id LE + body)}],
     "unknown": [TL names the library does not know],
     "errors": [{"name", "error"}]}
The JSON value is what mtcall's serde structs read: an object of the stored params by TL name
(no "_" at top level, no flags fields); absent conditional -> null; `true` flags -> bool;
int/double -> number; long -> integer literal; string -> string; bytes/int128/int256 -> array of
byte numbers; Bool -> bool; vectors -> arrays; nested boxed -> {"_": TL name, ...params};
nested bare -> {...params}; raw `!X`/`Object` -> array of the inner object's bytes.

Errors raised by the library while constructing or serializing, and forms whose parameters do
not match the library's definition, are recorded under "errors" and make the script exit with
status 1 (after writing OUT.json).
"""

import json
import random
import sys
import traceback

MAX_DEPTH = 3  # objects nested deeper than this get no conditionals and empty vectors
VARIANTS = 4

BOOL_NAMES = ('boolTrue', 'boolFalse')
PRIMITIVES = {'int', 'long', 'double', 'string', 'bytes', 'int128', 'int256', 'Bool', 'true'}

UNICODE = list('äöüßéçñÿ Привет мир 你好世界 ☎✓€ 😀🎉📞\u00a0')
ASCII = list('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.')

INT_EDGES = [0, 1, -1, 2**31 - 1, -2**31, 255, 256, 65535]
LONG_EDGES = [0, 1, -1, 2**63 - 1, -2**63, 2**53, 2**53 + 1, -(2**53 + 1), 2**32, -2**31 - 1]
DOUBLE_EDGES = [0.0, 1.0, -1.5, 0.1, 1e22, 1e300, -1e-300, 5e-324, 1.7976931348623157e308,
                123456.789, -2.2250738585072014e-308]
BYTES_LENGTHS = [0, 1, 2, 3, 4, 253, 254, 255, 256, 600]


class Library:
    """What the generator needs from a client library. Subclasses set `client` and `layer` and
    implement the methods that raise NotImplementedError."""

    client = None  # "telethon 1.45.0"
    layer = None  # the library's API layer
    name = None  # for messages: "Telethon"
    script = None  # for the usage line: "telethon_vectors.py"
    # True where the library cannot write a present but empty conditional vector (it tests the
    # list's truthiness): such vectors are then generated with at least one element, and kept
    # absent when their element type is unsupported (which would make them empty).
    nonempty_flag_vectors = False

    def check_layer(self, doc):
        """An error message if the library's layer cannot be checked against this manifest."""
        if self.layer not in doc['layers']:
            return (f'{self.client} is at layer {self.layer}, which mtcall does not support '
                    f'(manifest layers: {doc["layers"]})')
        return None

    def knows(self, form):
        """Whether the library has a class for this form's constructor id."""
        raise NotImplementedError

    def check(self, form):
        """An error message if the form's parameters do not match the library's, else None."""
        raise NotImplementedError

    def lib_name(self, form, name):
        """The library's keyword for the TL parameter `name` of `form`."""
        return 'is_self' if name == 'self' else name

    def make(self, form, kwargs):
        """The library's object for `form` with these keyword arguments."""
        raise NotImplementedError

    def serialize(self, form, obj):
        """The boxed bytes (constructor id + body) of a top-level object."""
        raise NotImplementedError

    def raw_query(self, rng):
        """(json, lib) for a `!X` / `Object` value: a parameterless function picked with
        rng.choice, as the array of its bytes and the library's object."""
        raise NotImplementedError

    def big_int(self, b):
        """The library's value of an int128/int256 given as little-endian bytes."""
        return int.from_bytes(b, 'little', signed=True)

    def param_value(self, gen, form, param, depth):
        """(json, lib) for a present parameter where the library needs a special value, or None
        for the generator's usual value of the parameter's type."""
        return None

    def custom_obj(self, gen, form, depth, boxed):
        """(json, lib) for a form the library builds in its own way, or None."""
        return None

    def bool_vectors(self):
        """The vectors of boolTrue and boolFalse."""
        raise NotImplementedError

    def explain_unknown(self, form):
        """A note on an unknown form (e.g. the library knows the name with another id), or None."""
        return None


def is_bare_name(t):
    """A lowercase last segment (`future_salt`, `auth.sentCode`) names a bare constructor."""
    return t.split('.')[-1][:1].islower()


def elem_type(t):
    if t.startswith('Vector<') or t.startswith('vector<'):
        return t[7:-1]
    return None


def is_raw(t):
    return t.startswith('!') or t == 'Object'


class Manifest:
    def __init__(self, doc, lib):
        self.forms = [f for f in doc['forms'] if lib.layer in f['layers']]
        self.all_results = {f['result'] for f in doc['forms'] if not f['function']}
        # Constructors usable as nested values: known to the library, at its layer.
        # Forms whose parameters do not match the library's class (Library.check) are
        # reported as errors and not used inside other values.
        self.mismatch = {}
        for f in self.forms:
            if f['name'] not in BOOL_NAMES and lib.knows(f):
                err = lib.check(f)
                if err:
                    self.mismatch[f['name']] = err
        self.known = [f for f in self.forms if not f['function'] and f['name'] not in BOOL_NAMES
                      and lib.knows(f) and f['name'] not in self.mismatch]
        self.by_result = {}
        self.by_name = {}
        for f in self.known:
            self.by_result.setdefault(f['result'], []).append(f)
            self.by_name[f['name']] = f

    def object_forms(self, t):
        """(candidate forms, boxed?) for an object type, or ([], _) if unsupported."""
        if t.startswith('%'):
            fs = self.by_result.get(t[1:], [])
            return (fs if len(fs) == 1 else []), False
        if is_bare_name(t):
            f = self.by_name.get(t)
            return ([f] if f else []), False
        if t not in self.all_results:
            return [], True
        return self.by_result.get(t, []), True


class Gen:
    """Builds (json value, library value) pairs for one vector."""

    def __init__(self, manifest, lib, rng, mode):
        self.m = manifest
        self.lib = lib
        self.rng = rng
        self.mode = mode  # 'all' | 'none' | 'random'

    # -- support ---------------------------------------------------------------------------
    def supported(self, t):
        e = elem_type(t)
        if e is not None:
            return True  # an unsupported element type just gives an empty vector
        if t in PRIMITIVES or is_raw(t):
            return True
        return bool(self.m.object_forms(t)[0])

    def supported_conditional(self, t):
        e = elem_type(t)
        if e is not None and self.lib.nonempty_flag_vectors:
            return self.supported(e)
        return self.supported(t)

    # -- scalars ---------------------------------------------------------------------------
    def int32(self):
        r = self.rng
        return r.choice(INT_EDGES) if r.random() < 0.3 else r.randrange(-2**31, 2**31)

    def int64(self):
        r = self.rng
        return r.choice(LONG_EDGES) if r.random() < 0.3 else r.randrange(-2**63, 2**63)

    def double(self):
        r = self.rng
        if r.random() < 0.4:
            return r.choice(DOUBLE_EDGES)
        return r.uniform(-1e9, 1e9)

    def raw_bytes(self, n):
        return bytes(self.rng.randrange(256) for _ in range(n))

    def byte_string(self):
        r = self.rng
        n = r.choice(BYTES_LENGTHS) if r.random() < 0.5 else r.randrange(0, 601)
        return self.raw_bytes(n)

    def string(self):
        r = self.rng
        kind = r.randrange(6)
        if kind == 0:
            return ''
        if kind == 1:
            return ''.join(r.choice(ASCII) for _ in range(r.randrange(1, 21)))
        if kind == 2:
            return ''.join(r.choice(UNICODE + ASCII) for _ in range(r.randrange(1, 31)))
        if kind == 3:  # long ASCII: the 254-byte prefix switch
            return ''.join(r.choice(ASCII) for _ in range(r.choice([252, 253, 254, 255, 256, 300, 600])))
        if kind == 4:  # long multi-byte
            return ''.join(r.choice(UNICODE) for _ in range(r.randrange(100, 300)))
        return ''.join(r.choice(ASCII) for _ in range(r.choice([1, 2, 3, 4, 5])))

    # -- values ----------------------------------------------------------------------------
    def value(self, t, depth, conditional=False):
        """(json, lib) for a required value of type t inside an object at `depth`
        (`conditional`: the value of a present conditional parameter)."""
        e = elem_type(t)
        if e is not None:
            if depth > MAX_DEPTH or not self.supported(e):  # unsupported element: empty
                n = 0
            elif self.mode == 'all' or (conditional and self.lib.nonempty_flag_vectors):
                n = self.rng.randint(1, 3 if depth < 2 else 2)
            else:
                n = self.rng.randint(0, 3 if depth < 2 else 2)
            items = [self.value(e, depth) for _ in range(n)]
            return [j for j, _ in items], [v for _, v in items]
        if t == 'int':
            v = self.int32()
            return v, v
        if t == 'long':
            v = self.int64()
            return v, v
        if t == 'double':
            v = self.double()
            return v, v
        if t == 'string':
            v = self.string()
            return v, v
        if t == 'bytes':
            v = self.byte_string()
            return list(v), v
        if t in ('int128', 'int256'):
            b = self.raw_bytes(16 if t == 'int128' else 32)
            return list(b), self.lib.big_int(b)
        if t == 'Bool':
            v = self.rng.random() < 0.5
            return v, v
        if t == 'true':
            return True, True
        if is_raw(t):
            return self.lib.raw_query(self.rng)
        forms, boxed = self.m.object_forms(t)
        if not forms:
            raise ValueError(f'no constructor known for required type {t}')
        if depth + 1 > MAX_DEPTH:
            # Past the depth bound prefer the constructors with fewest required objects.
            cost = {f['name']: self.required_objects(f) for f in forms}
            low = min(cost.values())
            forms = [f for f in forms if cost[f['name']] == low]
        form = self.rng.choice(forms)
        return self.obj(form, depth + 1, boxed)

    @staticmethod
    def required_objects(form):
        return sum(1 for p in form['params']
                   if p['stored'] and not p['flag'] and elem_type(p['type']) is None
                   and p['type'] not in PRIMITIVES and not is_raw(p['type']))

    def obj(self, form, depth, boxed):
        """(json, library object) for a constructor form at `depth` (0 = top level)."""
        custom = self.lib.custom_obj(self, form, depth, boxed)
        if custom is not None:
            return custom
        params = [p for p in form['params'] if p['stored']]
        groups = {}
        for p in params:
            if p['flag']:
                groups.setdefault((p['flag']['field'], p['flag']['bit']), []).append(p)
        present = {}
        for key, ps in groups.items():
            if depth > MAX_DEPTH or self.mode == 'none':
                on = False
            elif self.mode == 'all':
                on = True
            else:
                on = self.rng.random() < 0.5
            # Params sharing a bit go together; one unsupported type keeps the group absent.
            if any(not self.supported_conditional(p['type']) for p in ps):
                on = False
            present[key] = on
        js = {'_': form['name']} if boxed else {}
        kwargs = {}
        for p in params:
            name, t = p['name'], p['type']
            lib_name = self.lib.lib_name(form, name)
            if p['flag']:
                on = present[(p['flag']['field'], p['flag']['bit'])]
                if t == 'true':
                    js[name] = on
                    kwargs[lib_name] = True if on else None
                    continue
                if not on:
                    js[name] = None
                    kwargs[lib_name] = None
                    continue
            special = self.lib.param_value(self, form, p, depth)
            j, v = special if special is not None else self.value(t, depth, bool(p['flag']))
            js[name] = j
            kwargs[lib_name] = v
        return js, self.lib.make(form, kwargs)


def dump(out):
    """The output document, one vector per line."""
    def compact(x):
        return json.dumps(x, ensure_ascii=False, separators=(',', ':'))
    head = ',\n'.join(f' {compact(k)}: {compact(out[k])}' for k in out if k != 'vectors')
    vectors = ',\n'.join('  ' + compact(v) for v in out['vectors'])
    return f'{{\n{head},\n "vectors": [\n{vectors}\n ]\n}}\n'


def main(lib):
    """Usage: SCRIPT MANIFEST.json OUT.json; exits 1 if any error was recorded."""
    if len(sys.argv) != 3:
        sys.exit(f'usage: {lib.script} MANIFEST.json OUT.json')
    with open(sys.argv[1], encoding='utf-8') as f:
        doc = json.load(f)
    problem = lib.check_layer(doc)
    if problem:
        sys.exit(problem)
    manifest = Manifest(doc, lib)

    vectors, unknown, errors, notes = [], [], [], []
    for form in manifest.forms:
        name = form['name']
        if name in BOOL_NAMES:
            if name == 'boolTrue':
                vectors.extend(lib.bool_vectors())
            continue
        if not lib.knows(form):
            unknown.append(name)
            note = lib.explain_unknown(form)
            if note:
                notes.append(f'{name}#{form["id"]:08x} unknown: {note}')
            continue
        if name in manifest.mismatch:
            errors.append({'name': name, 'error': manifest.mismatch[name]})
            continue
        for variant in range(VARIANTS):
            mode = ('all', 'none', 'random', 'random')[variant]
            rng = random.Random(f'{name}#{form["id"]:08x}/{variant}')
            try:
                js, obj = Gen(manifest, lib, rng, mode).obj(form, 0, boxed=True)
                del js['_']
                data = lib.serialize(form, obj)
                if int.from_bytes(data[:4], 'little') != form['id']:
                    raise ValueError(f'bytes start with {data[:4].hex()}, not the constructor id')
            except Exception as e:
                errors.append({'name': name, 'error': f'variant {variant}: {e!r}\n'
                                                      + traceback.format_exc(limit=3)})
                continue
            vector = {'name': name, 'value': js, 'hex': data.hex()}
            if vector not in vectors:  # forms without params give one vector, not four
                vectors.append(vector)

    out = {'client': lib.client, 'layer': lib.layer, 'vectors': vectors, 'unknown': unknown,
           'errors': errors}
    with open(sys.argv[2], 'w', encoding='utf-8') as f:
        f.write(dump(out))
    print(f'{lib.client} (layer {lib.layer}): {len(vectors)} vectors, unknown: '
          f'{", ".join(unknown) or "-"}, errors: {len(errors)}', file=sys.stderr)
    for n in notes:
        print(f'note: {n}', file=sys.stderr)
    for e in errors:
        print(f'error: {e["name"]}: {e["error"]}', file=sys.stderr)
    sys.exit(1 if errors else 0)
