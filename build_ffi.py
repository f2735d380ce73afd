"""cffi build script (out-of-line API mode) for ``microloop._native``.

The ``cdef`` is derived from ``include/microloop.h``, the one source of truth for the C ABI: preprocessor
lines are dropped except ``#define NAME <integer>``, and so are the ``#ifdef __cplusplus`` blocks.
``setup.py`` links the static Rust library (``libmicroloop.a``) into the extension it builds.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig

from cffi import FFI

ROOT = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(ROOT, "include", "microloop.h")

_INTEGER_DEFINE = re.compile(r"^#define\s+[A-Za-z_][A-Za-z0-9_]*\s+-?(0x[0-9A-Fa-f]+|[0-9]+)[uUlL]*\s*$")


def cdef_from_header(text: str) -> str:
    """Turns the C header into declarations cffi's ``cdef`` accepts."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # block comments (doc comments)
    text = re.sub(r"#ifdef __cplusplus.*?#endif[^\n]*", "", text, flags=re.S)
    out = []
    for line in text.splitlines():
        line = re.sub(r"//.*", "", line).rstrip()
        stripped = line.strip()
        if stripped.startswith("#"):
            if _INTEGER_DEFINE.match(stripped):
                out.append(stripped)
            continue
        if stripped:
            out.append(line)
    # The version string the header was compiled with, to check against the library at import.
    out.append("static const char *const ML_VERSION_STRING;")
    return "\n".join(out) + "\n"


def _read_header() -> str:
    with open(HEADER, encoding="utf-8") as f:
        return f.read()


ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header(_read_header()))
ffibuilder.set_source(
    "microloop._native",
    '#include "microloop.h"\n',
    include_dirs=[os.path.join(ROOT, "include")],
    # Free-threaded CPython has no limited API (cffi 2.0); everywhere else one abi3 module.
    py_limited_api=not sysconfig.get_config_var("Py_GIL_DISABLED"),
)

if __name__ == "__main__":  # print the cdef, to see what cffi is given
    sys.stdout.write(cdef_from_header(_read_header()))
