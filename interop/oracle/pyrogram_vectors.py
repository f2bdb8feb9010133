#!/usr/bin/env python3
"""Oracle vectors for mtcall's TL codec, produced by a library of the Pyrogram family: whichever
one of these the running interpreter has (each pinned in interop/pyrogram/requirements-NAME.txt):

    distribution   imports as   version   API layer
    pyrogram       pyrogram     2.0.106   158
    hydrogram      hydrogram    0.2.0     181
    pyrofork       pyrogram     2.3.69    220
    kurigram       pyrogram     2.2.26    229

Usage: python pyrogram_vectors.py MANIFEST.json OUT.json

The manifest, the generated values and OUT.json are described in vectors_common.py (shared with
telethon_vectors.py). The layer is the library's own (`raw.all.layer`), "client" is the
distribution and its version ("pyrofork 2.3.69"). For every form that applies at that layer, the
script looks the constructor id up in the library's `raw.all.objects`, builds four values with a
seeded PRNG (the same seeds as the other oracle scripts), constructs the raw TLObject with its
keyword arguments and serializes it with `.write()` (the boxed bytes).

Before any value is built each known form is compared with the library's generated class: the
parameter names, their TL types with flag field and bit (the `# flags.5?true` comments the
Pyrogram compiler writes next to every attribute in `__init__`) and the wire order of the fields
(`read()`). A difference is recorded under "errors" with the constructor name, id and the
differing parameters, and the form is not used inside other values. The classes Pyrogram writes
by hand (`raw.core`: FutureSalt, FutureSalts, GzipPacked, ...) have no such comments; for them
only the parameter names are compared.

Library quirks, kept small and explicit:
- A conditional vector's flag bit is set from the list's truthiness (`if self.x`), so a present
  but empty vector cannot be written: pyrogram, hydrogram and pyrofork clear the bit but still
  write the empty vector (bytes no decoder reads back), kurigram drops it (`[]` becomes absent).
  Present conditional vectors are therefore generated with at least one element
  (`Library.nonempty_flag_vectors`).
- The Pyrogram compiler writes a bare `vector<X>` parameter of a generated class with the Vector
  constructor id; such a parameter is reported as a difference. (The hand-written
  FutureSalts writes its bare `vector<future_salt>` correctly.)
- Where the library types a field `string` that the manifest types `bytes` (msgs_state_info.info,
  msgs_all_info.info: the same wire form), the value is a generated string: Pyrogram's String
  writes `value.encode()`, so arbitrary bytes cannot be given. The JSON value is its UTF-8 bytes.
- The core FutureSalt writes its bare body only (it occurs only inside future_salts); as a
  top-level vector its own `ID` is put in front.
- The core GzipPacked takes an object and gzips its bytes itself: its packed_data is that of one of
  the parameterless functions used for `!X`, and the JSON value is read back from the written bytes
  with the library's Bytes reader. gzip puts the current time into its header; the library's
  `compress` is called with mtime=0 so the output is reproducible.

Errors raised by the library while constructing or serializing, and forms that differ from the
library's definition, are recorded under "errors" and make the script exit with status 1 (after
writing OUT.json).
"""

import functools
import gzip
import importlib
import importlib.metadata
import inspect
import io
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vectors_common  # noqa: E402

# Distribution -> the package it installs. Exactly one of them may be installed.
DISTRIBUTIONS = {
    'pyrogram': 'pyrogram',
    'hydrogram': 'hydrogram',
    'pyrofork': 'pyrogram',
    'kurigram': 'pyrogram',
}

# Core classes whose write() gives the bare body only.
BARE_CORE = {'FutureSalt'}

INIT_ATTR = re.compile(r'^\s*self\.(\w+) = (\w+)  # (\S+)\s*$')
READ_FIELD = re.compile(r'^        (\w+) = ')


def find_library():
    """(distribution, version, package) of the one installed Pyrogram-family library."""
    found = []
    for dist, package in DISTRIBUTIONS.items():
        try:
            found.append((dist, importlib.metadata.version(dist), package))
        except importlib.metadata.PackageNotFoundError:
            pass
    if len(found) != 1:
        names = ', '.join(f'{d} {v}' for d, v, _ in found) or 'none'
        sys.exit(f'pyrogram_vectors.py needs exactly one of {", ".join(DISTRIBUTIONS)} '
                 f'installed; found: {names}')
    return found[0]


def tl_key(kind, tl_name):
    """A comparison key for a TL name (`auth.sentCode`) and a Pyrogram QUALNAME
    (`types.auth.SentCode`): case and underscores dropped."""
    return f'{kind}.{tl_name}'.replace('_', '').lower()


class Pyrogram(vectors_common.Library):
    script = 'pyrogram_vectors.py'
    nonempty_flag_vectors = True

    def __init__(self):
        dist, version, package = find_library()
        self.client = f'{dist} {version}'
        self.name = dist
        self.package = package
        top = importlib.import_module(package)
        lib_version = getattr(top, '__version__', version)
        if lib_version != version:
            sys.exit(f'{package} says version {lib_version}, but {dist} {version} is installed')
        self.raw = importlib.import_module(package + '.raw')
        self.core = importlib.import_module(package + '.raw.core')
        self.layer = self.raw.all.layer
        self.objects = {}
        for cid, cls in self.raw.all.objects.items():
            if isinstance(cls, str):  # raw/__init__ resolves the dotted paths; in case it did not
                path, attr = cls.rsplit('.', 1)
                cls = getattr(importlib.import_module(path), attr)
            self.objects[cid] = cls
        functions = self.raw.functions
        # Parameterless functions used as the inner object of `!X` / `Object` parameters.
        self.raw_queries = [functions.help.GetConfig, functions.help.GetNearestDc,
                            functions.updates.GetState]
        gzip_module = importlib.import_module(package + '.raw.core.gzip_packed')
        if hasattr(gzip_module, 'compress'):
            gzip_module.compress = functools.partial(gzip.compress, mtime=0)
        self.by_key = {}
        for cid, cls in self.objects.items():
            qualname = getattr(cls, 'QUALNAME', '')
            if qualname.startswith(('types.', 'functions.')):
                self.by_key.setdefault(qualname.replace('_', '').lower(), []).append((cid, cls))
        self.string_for_bytes = set()  # (form id, lib name): manifest bytes, library string
        self.bytes_for_string = set()  # (form id, lib name): manifest string, library bytes

    # -- the library's definitions ---------------------------------------------------------
    def is_core(self, cls):
        return cls.__module__.startswith(self.package + '.raw.core')

    @staticmethod
    def attr_types(cls):
        """{attribute: TL type with flag prefix} from the comments in the generated __init__."""
        init = cls.__dict__.get('__init__')
        if init is None:
            return {}
        types = {}
        for line in inspect.getsource(init).splitlines():
            m = INIT_ATTR.match(line)
            if m:
                if m.group(1) != m.group(2):
                    raise ValueError(f'{cls.__name__}: attribute {m.group(1)} is set from {m.group(2)}')
                types[m.group(1)] = m.group(3)
        return types

    @staticmethod
    def keywords(cls):
        init = cls.__dict__.get('__init__')
        return list(inspect.signature(init).parameters)[1:] if init else []

    @staticmethod
    def read_order(cls):
        """The fields in wire order (flags fields included), as the generated read() reads them."""
        src = inspect.getsource(cls.__dict__['read'])
        return [m.group(1) for m in map(READ_FIELD.match, src.splitlines()) if m]

    def knows(self, form):
        return form['id'] in self.objects

    def check(self, form):
        cls = self.objects[form['id']]
        where = f'{self.name}\'s {cls.__module__}.{cls.__name__}'
        stored = [p for p in form['params'] if p['stored']]
        unstored = {self.lib_name(form, p['name']) for p in form['params'] if not p['stored']}
        if self.is_core(cls):  # hand-written: compare the names only
            lib = set(self.keywords(cls))
            ours = {self.lib_name(form, p['name']) for p in stored}
            missing, extra = ours - lib, lib - ours - unstored
            if missing or extra:
                return (f'{form["name"]}#{form["id"]:08x}: parameters differ from {where}: only in '
                        f'the manifest {sorted(missing)}, only in {self.name} {sorted(extra)}')
            return None
        types = self.attr_types(cls)
        problems = []
        if set(types) != set(self.keywords(cls)):
            problems.append(f'{self.name}\'s keywords {self.keywords(cls)} are not its typed '
                            f'attributes {sorted(types)}')
        for p in form['params']:  # unstored ones too: mtcall never writes them, but they are
            if p['type'] == '#':    # part of its form (flags fields: see the wire order below)
                continue
            n = self.lib_name(form, p['name'])
            want = (f'{p["flag"]["field"]}.{p["flag"]["bit"]}?' if p['flag'] else '') + p['type']
            have = types.get(n)
            if have is None:
                problems.append(f'{p["name"]}:{want} only in the manifest')
                continue
            if have == want:
                pass
            elif p['stored'] and (have.replace('?string', '?bytes') == want.replace('?string', '?bytes')
                                  or {have, want} == {'string', 'bytes'}):
                # same wire form: the value is generated to suit the library's type
                (self.string_for_bytes if want.endswith('bytes') else self.bytes_for_string).add(
                    (form['id'], n))
            else:
                problems.append(f'{p["name"]}: manifest {want}, {self.name} {have}')
            if have.split('?')[-1].startswith('vector<'):
                problems.append(f'{p["name"]}: {self.name} writes the bare {have} with the Vector id')
        ours = {self.lib_name(form, p['name']) for p in stored}
        for n, t in types.items():
            if n not in ours and n not in unstored:
                problems.append(f'{n}:{t} only in {self.name}')
        # Wire order of the fields both have, flags fields included (`true` flags take no
        # place on the wire).
        lib_order = [n for n in self.read_order(cls)
                     if n in ours | unstored and not types.get(n, '#').endswith('?true')]
        our_order = [self.lib_name(form, p['name']) for p in form['params']
                     if self.lib_name(form, p['name']) in lib_order]
        if lib_order != our_order:
            problems.append(f'wire order: manifest {our_order}, {self.name} {lib_order}')
        if problems:
            return (f'{form["name"]}#{form["id"]:08x}: parameters differ from {where}: '
                    + '; '.join(problems))
        return None

    # -- values ----------------------------------------------------------------------------
    def param_value(self, gen, form, param, depth):
        key = (form['id'], self.lib_name(form, param['name']))
        if key in self.string_for_bytes:
            s = gen.string()
            return list(s.encode('utf-8')), s
        if key in self.bytes_for_string:
            s = gen.string()
            return s, s.encode('utf-8')
        return None

    def custom_obj(self, gen, form, depth, boxed):
        cls = self.objects.get(form['id'])
        if cls is not self.core.GzipPacked:
            return None
        _, query = self.raw_query(gen.rng)
        obj = cls(packed_data=query)
        data = obj.write()
        packed = self.core.Bytes.read(io.BytesIO(data[4:]))
        js = {'_': form['name']} if boxed else {}
        js['packed_data'] = list(packed)
        return js, obj

    def make(self, form, kwargs):
        return self.objects[form['id']](**kwargs)

    def serialize(self, form, obj):
        data = obj.write()
        if type(obj).__name__ in BARE_CORE and self.is_core(type(obj)):
            data = self.core.Int(type(obj).ID, False) + data
        return data

    def raw_query(self, rng):
        obj = rng.choice(self.raw_queries)()
        return list(obj.write()), obj

    def bool_vectors(self):
        """boolTrue/boolFalse: the bytes of the library's Bool writer."""
        return [{'name': name, 'value': v, 'hex': bytes(self.core.Bool(v)).hex()}
                for name, v in (('boolTrue', True), ('boolFalse', False))]

    def explain_unknown(self, form):
        kind = 'functions' if form['function'] else 'types'
        same = self.by_key.get(tl_key(kind, form['name']), [])
        if same:
            return ', '.join(f'{self.name} has {cls.QUALNAME} with id {cid:08x}' for cid, cls in same)
        return None


if __name__ == '__main__':
    vectors_common.main(Pyrogram())
