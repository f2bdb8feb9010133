#!/usr/bin/env python3
"""Oracle vectors for mtcall's TL codec, produced by Telethon (PyPI `telethon`, API layer 229).

Usage: python telethon_vectors.py MANIFEST.json OUT.json

The manifest, the generated values and OUT.json are described in vectors_common.py (shared with
pyrogram_vectors.py). For every form that applies at layer 229, the script looks the constructor
id up in Telethon's `tlobjects`, builds four values with a seeded PRNG, constructs the Telethon
object and serializes it with the library (`bytes(obj)`). boolTrue/boolFalse are core types in
Telethon (no class); their bytes are taken from Telethon's own Bool writer.

OUT.json: {"client": "telethon 1.45.0", "layer": 229, "vectors": [...], "unknown": [...],
"errors": [...]}. Errors raised by the library while constructing or serializing, and forms whose
parameters are not Telethon's keywords, are recorded under "errors" and make the script exit with
status 1 (after writing OUT.json).
"""

import inspect
import os
import sys

import telethon
from telethon.tl import functions
from telethon.tl.alltlobjects import LAYER as LIB_LAYER_FROM_LIB
from telethon.tl.alltlobjects import tlobjects
from telethon.tl.types import JsonBool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vectors_common  # noqa: E402

LAYER = 229

# Parameterless functions used as the inner object of `!X` / `Object` parameters.
RAW_QUERIES = [
    functions.help.GetConfigRequest,
    functions.help.GetNearestDcRequest,
    functions.updates.GetStateRequest,
]


def generated_class(cls, cid):
    """The generated class with this constructor id (Telethon patches some, e.g. MessageService,
    with subclasses whose __init__ takes every Message field)."""
    for k in cls.__mro__:
        if k.__dict__.get('CONSTRUCTOR_ID') == cid:
            return k
    return cls


class Telethon(vectors_common.Library):
    client = 'telethon ' + telethon.__version__
    layer = LAYER
    name = 'Telethon'
    script = 'telethon_vectors.py'

    def check_layer(self, doc):
        if LIB_LAYER_FROM_LIB != LAYER:
            return f'Telethon {telethon.__version__} is at layer {LIB_LAYER_FROM_LIB}, expected {LAYER}'
        return super().check_layer(doc)

    def knows(self, form):
        return form['id'] in tlobjects

    def check(self, form):
        """The stored manifest params must be exactly Telethon's keywords (besides flags fields).
        Returns an error message or None."""
        gen = generated_class(tlobjects[form['id']], form['id'])
        init = gen.__dict__.get('__init__')  # parameterless classes inherit TLObject's
        lib = set(list(inspect.signature(init).parameters)[1:]) if init else set()
        ours = {self.lib_name(form, p['name']) for p in form['params'] if p['stored']}
        unstored = {self.lib_name(form, p['name']) for p in form['params'] if not p['stored']}
        missing = ours - lib
        extra = lib - ours - unstored
        if missing or extra:
            return (f'parameters differ from Telethon\'s {gen.__name__}: only in the manifest '
                    f'{sorted(missing)}, only in Telethon {sorted(extra)}')
        return None

    def make(self, form, kwargs):
        return tlobjects[form['id']](**kwargs)

    def serialize(self, form, obj):
        return bytes(obj)

    def raw_query(self, rng):
        obj = rng.choice(RAW_QUERIES)()
        return list(bytes(obj)), obj

    def bool_vectors(self):
        """boolTrue/boolFalse are core in Telethon: take their bytes from its Bool writer."""
        out = []
        for name, v in (('boolTrue', True), ('boolFalse', False)):
            out.append({'name': name, 'value': v, 'hex': bytes(JsonBool(v))[4:].hex()})
        return out


if __name__ == '__main__':
    vectors_common.main(Telethon())
