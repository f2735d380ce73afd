"""Builds MicroLoop's Python package: the Rust library (cargo) linked statically into ``microloop._native``.

``pip install .`` (or an sdist) needs cargo and a C compiler. ``build_ext`` runs ``cargo build --locked
--manifest-path native/Cargo.toml -p microloop-ffi -p microloop-commands``
(profile ``release``, or ``$MICROLOOP_CARGO_PROFILE``), links ``libmicroloop.a`` into the cffi extension
(``build_ffi.py``) and copies the shared library and the header into ``microloop/_lib/`` so C, Go and Node
programs can use the copy a ``pip install`` brought (``microloop.lib_path()``, ``microloop.include_path()``).
The native commands, the LLM-API proxy ``microloop-proxy``, the coding agents' hook ``microloop-hook`` and
the MCP relay ``microloop-mcp``, are installed as scripts: into the environment's ``bin/``, the way ruff
ships its binary (``microloop.hook_path()``). They share nearly all their code, so one executable,
``microloop-commands``, holds the three: each command is a two-line ``sh`` script beside it that runs
``microloop-commands proxy|mcp|hook "$@"`` (on Windows, a copy of the executable under each name). With ``MICROLOOP_LIB_DIR`` (``make lib``'s output, or
``make wheel``'s cross-built one) nothing is built: the library and the commands are taken from there.
``MICROLOOP_LINK=shared`` (Linux; ``make wheel``) links the extension against the shipped ``libmicroloop.so``
(found through ``$ORIGIN/_lib``) instead of the static library. ``MICROLOOP_STRIP=0`` leaves the copies unstripped (``make wheel``: its artifacts are stripped already,
and the host's ``strip`` cannot read another architecture).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext as _build_ext
from distutils.command.build_scripts import build_scripts as _build_scripts  # noqa: E402 (setuptools provides it)

ROOT = os.path.dirname(os.path.abspath(__file__))
MANIFEST = os.path.join(ROOT, "native", "Cargo.toml")
HEADER = os.path.join(ROOT, "include", "microloop.h")
EXE = ".exe" if sys.platform == "win32" else ""
# The native commands the wheel puts on bin/: the LLM-API proxy, the coding agents' hook and the MCP
# relay, each run by the one executable that holds them (native/commands).
EXECUTABLE = "microloop-commands" + EXE
COMMANDS = {"microloop-proxy": "proxy", "microloop-mcp": "mcp", "microloop-hook": "hook"}
SCRIPTS = (EXECUTABLE, *(name + EXE for name in COMMANDS))
PACKAGES = ("microloop-ffi", "microloop-commands")

# A command's script: runs the executable installed beside it (found through a link to the script too).
LAUNCHER = """#!/bin/sh
# {name}: MicroLoop's commands share one executable, microloop-commands, installed beside this script.
self=$0
[ -L "$self" ] && self=$(readlink -f -- "$self" 2>/dev/null || printf '%s' "$0")
case $self in */*) ;; *) self=./$self ;; esac
exec "${{self%/*}}/microloop-commands" {command} "$@"
"""

# System libraries the Rust standard library needs when linked statically
# (`cargo rustc -- --print native-static-libs`).
NATIVE_LIBS = {
    "linux": ["pthread", "dl", "m", "gcc_s"],
    "darwin": ["iconv"],
    "win32": ["ws2_32", "userenv", "ntdll", "bcrypt", "advapi32"],
}


def _platform() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


def _strip() -> bool:
    return _platform() == "linux" and os.environ.get("MICROLOOP_STRIP") != "0" and shutil.which("strip") is not None


def _version() -> str:
    with open(os.path.join(ROOT, "microloop", "_version.py"), encoding="utf-8") as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


class build_ext(_build_ext):
    """Builds the Rust library with cargo first, then the cffi extension against it."""

    def run(self) -> None:
        prebuilt = os.environ.get("MICROLOOP_LIB_DIR")
        if prebuilt:  # a library already built (`make lib`): link it as is
            out = os.path.abspath(prebuilt)
        else:
            cargo = os.environ.get("CARGO", "cargo")
            profile = os.environ.get("MICROLOOP_CARGO_PROFILE", "release")
            packages = [arg for p in PACKAGES for arg in ("-p", p)]
            subprocess.check_call([cargo, "build", "--profile", profile, "--locked", "--manifest-path", MANIFEST, *packages])
            target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "native", "target")
            triple = os.environ.get("CARGO_BUILD_TARGET")
            out = os.path.join(os.path.abspath(target_dir), *([triple] if triple else []), profile)
        plat = _platform()
        static = os.path.join(out, "microloop.lib" if plat == "win32" else "libmicroloop.a")
        shared = {"win32": "microloop.dll", "darwin": "libmicroloop.dylib"}.get(plat, "libmicroloop.so")
        link_shared = plat == "linux" and os.environ.get("MICROLOOP_LINK") == "shared"
        for ext in self.extensions:
            if link_shared:
                # Wheels (`make wheel`): the extension loads the libmicroloop.so shipped beside it in
                # _lib/ rather than carrying a second copy of the library (a smaller wheel).
                ext.library_dirs.append(out)
                ext.libraries.append("microloop")
                ext.extra_link_args.append("-Wl,-rpath,$ORIGIN/_lib")
            else:
                ext.extra_objects.append(static)
                ext.libraries += NATIVE_LIBS.get(plat, [])
            if plat == "linux":
                # The extension exports its init function alone, none of the Rust library's symbols
                # (a version script: GNU ld and zig's linker both take it).
                exports = os.path.join(os.path.abspath(self.build_temp), "native.map")
                os.makedirs(os.path.dirname(exports), exist_ok=True)
                with open(exports, "w", encoding="utf-8") as f:
                    f.write("{ global: PyInit__native; local: *; };\n")
                ext.extra_link_args += [f"-Wl,--version-script={exports}", "-Wl,--gc-sections", "-Wl,--strip-debug"]
        super().run()
        # The shared library and the header, for programs in other languages.
        dest_root = ROOT if self.inplace else os.path.abspath(self.build_lib)
        dest = os.path.join(dest_root, "microloop", "_lib")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(os.path.join(out, shared), os.path.join(dest, shared))
        if _strip():  # the release profile keeps line tables (debug = 1)
            subprocess.call(["strip", "--strip-debug", os.path.join(dest, shared)])
        shutil.copyfile(HEADER, os.path.join(dest, "microloop.h"))
        self._native_scripts(out)

    def _native_scripts(self, out: str) -> None:
        """The executable and the commands' scripts become the distribution's scripts, so
        ``install_scripts`` (run after this, by ``bdist_wheel`` and by editable installs) puts them
        in ``bin/``."""
        built = os.path.join(out, EXECUTABLE)
        if not os.path.exists(built):
            raise RuntimeError(f"{built} is missing: build it with `make lib` (cargo build -p microloop-commands)")
        staged_dir = os.path.abspath(os.path.join(self.build_temp, "commands"))
        os.makedirs(staged_dir, exist_ok=True)
        staged = [os.path.join(staged_dir, EXECUTABLE)]
        shutil.copyfile(built, staged[0])
        if _strip():
            subprocess.call(["strip", "--strip-debug", staged[0]])
        for name, command in COMMANDS.items():
            staged.append(os.path.join(staged_dir, name + EXE))
            if EXE:  # no sh: a copy, which runs the command its name says
                shutil.copyfile(staged[0], staged[-1])
            else:
                with open(staged[-1], "w", encoding="utf-8", newline="\n") as f:
                    f.write(LAUNCHER.format(name=name, command=command))
        for path in staged:
            os.chmod(path, 0o755)
        names = {os.path.basename(p) for p in staged}
        scripts = [s for s in (self.distribution.scripts or []) if os.path.basename(s) not in names]
        self.distribution.scripts = scripts + staged


class build_scripts(_build_scripts):
    """Copies the native commands as they are (the stock command reads scripts as Python text)."""

    def copy_scripts(self):
        native = [s for s in self.scripts or [] if os.path.basename(s) in SCRIPTS]
        self.scripts = [s for s in self.scripts or [] if s not in native]
        outfiles, updated = super().copy_scripts() if self.scripts else ([], [])
        self.mkpath(self.build_dir)
        for script in native:
            out = os.path.join(self.build_dir, os.path.basename(script))
            self.copy_file(script, out)
            os.chmod(out, 0o755)
            outfiles.append(out)
            updated.append(out)
        return outfiles, updated


options = {}
if not sysconfig.get_config_var("Py_GIL_DISABLED"):
    options["bdist_wheel"] = {"py_limited_api": "cp310"}

setup(
    version=_version(),
    cffi_modules=["build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": build_ext, "build_scripts": build_scripts},
    options=options,
)
