"""Builds MicroLoop's Python package: the Rust library (cargo) linked statically into ``microloop._native``.

``pip install .`` needs cargo and a C compiler. ``build_ext`` runs
``cargo build --release --locked --manifest-path native/Cargo.toml -p microloop-ffi -p microloop-hook -p
microloop-mcp``, links ``libmicroloop.a`` into the cffi extension (``build_ffi.py``) and copies the shared library and the
header into ``microloop/_lib/`` so C, Go and Node programs can use the copy a ``pip install`` brought
(``microloop.lib_path()``, ``microloop.include_path()``). The native commands, the coding agents' hook
``microloop-hook`` and the MCP relay ``microloop-mcp``, are installed as scripts: into the environment's
``bin/``, the way ruff ships its binary (``microloop.hook_path()``). With ``MICROLOOP_LIB_DIR`` (``make
lib``'s output) nothing is built: the library and the commands are taken from there.
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
# The native commands the wheel puts on bin/: the coding agents' hook and the MCP relay.
COMMANDS = ("microloop-hook" + EXE, "microloop-mcp" + EXE)

# System libraries the Rust standard library needs when linked statically
# (`cargo rustc -- --print native-static-libs`).
NATIVE_LIBS = {
    "linux": ["pthread", "dl", "m", "gcc_s"],
    "darwin": ["iconv"],
    "win32": ["ws2_32", "userenv", "ntdll", "bcrypt", "advapi32"],
}


def _platform() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


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
            subprocess.check_call(
                [cargo, "build", "--release", "--locked", "--manifest-path", MANIFEST, "-p", "microloop-ffi", "-p", "microloop-hook", "-p", "microloop-mcp"]
            )
            target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "native", "target")
            triple = os.environ.get("CARGO_BUILD_TARGET")
            out = os.path.join(os.path.abspath(target_dir), *([triple] if triple else []), "release")
        plat = _platform()
        static = os.path.join(out, "microloop.lib" if plat == "win32" else "libmicroloop.a")
        shared = {"win32": "microloop.dll", "darwin": "libmicroloop.dylib"}.get(plat, "libmicroloop.so")
        for ext in self.extensions:
            ext.extra_objects.append(static)
            ext.libraries += NATIVE_LIBS.get(plat, [])
            if plat == "linux":
                ext.extra_link_args += ["-Wl,--exclude-libs,ALL", "-Wl,--strip-debug"]
        super().run()
        # The shared library and the header, for programs in other languages.
        dest_root = ROOT if self.inplace else os.path.abspath(self.build_lib)
        dest = os.path.join(dest_root, "microloop", "_lib")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(os.path.join(out, shared), os.path.join(dest, shared))
        if plat == "linux" and shutil.which("strip"):  # the release profile keeps line tables (debug = 1)
            subprocess.call(["strip", "--strip-debug", os.path.join(dest, shared)])
        shutil.copyfile(HEADER, os.path.join(dest, "microloop.h"))
        for command in COMMANDS:
            self._native_script(out, command)

    def _native_script(self, out: str, command: str) -> None:
        """A native command becomes one of the distribution's scripts, so ``install_scripts``
        (run after this, by ``bdist_wheel`` and by editable installs) puts it in ``bin/``."""
        built = os.path.join(out, command)
        if not os.path.exists(built):
            package = command[: -len(EXE)] if EXE else command
            raise RuntimeError(f"{built} is missing: build it with `make lib` (cargo build -p {package})")
        staged_dir = os.path.abspath(os.path.join(self.build_temp, "commands"))
        os.makedirs(staged_dir, exist_ok=True)
        staged = os.path.join(staged_dir, command)
        shutil.copyfile(built, staged)
        if _platform() == "linux" and shutil.which("strip"):
            subprocess.call(["strip", "--strip-debug", staged])
        os.chmod(staged, 0o755)
        scripts = [s for s in (self.distribution.scripts or []) if os.path.basename(s) != command]
        self.distribution.scripts = scripts + [staged]


class build_scripts(_build_scripts):
    """Copies the native commands as they are (the stock command reads scripts as Python text)."""

    def copy_scripts(self):
        native = [s for s in self.scripts or [] if os.path.basename(s) in COMMANDS]
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
    options["bdist_wheel"] = {"py_limited_api": "cp39"}

setup(
    version=_version(),
    cffi_modules=["build_ffi.py:ffibuilder"],
    cmdclass={"build_ext": build_ext, "build_scripts": build_scripts},
    options=options,
)
