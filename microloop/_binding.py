"""The thin layer over the C ABI (``microloop._native``, built by cffi from ``include/microloop.h``).

Private: nothing here is part of the API. Checks at import that the compiled extension, the library
and this package agree (the pattern of pyca/cryptography), and turns failure statuses into exceptions.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ._version import __version__
from .errors import NATIVE_ERRORS, NativeError, PolicyError

try:
    from ._native import ffi, lib
except ImportError as e:  # pragma: no cover - a broken install
    raise ImportError(
        "microloop's native extension (microloop._native) is missing: install the package with "
        "`pip install .` (needs cargo and a C compiler) or from a wheel"
    ) from e

ABI_VERSION = 2


def _check_versions() -> None:
    library = ffi.string(lib.ml_version_string()).decode("ascii")
    header = ffi.string(lib.ML_VERSION_STRING).decode("ascii")
    if lib.ml_abi_version() != ABI_VERSION or lib.ML_ABI_VERSION != ABI_VERSION:
        raise ImportError(
            f"microloop {__version__} speaks C ABI {ABI_VERSION}, but its native library speaks ABI "
            f"{lib.ml_abi_version()} (header {lib.ML_ABI_VERSION}): reinstall microloop"
        )
    if library != __version__ or header != __version__:
        raise ImportError(
            f"The version of microloop ({__version__}) does not match the loaded native library "
            f"({library}, compiled against header {header}): reinstall microloop"
        )


_check_versions()

VERDICT_SIZE: int = ffi.sizeof("ml_verdict")
STATS_SIZE: int = ffi.sizeof("ml_stats")


def take_error(status: int, errp: Any) -> tuple:
    """Reads and frees the ``ml_error`` in ``errp[0]``: returns ``(message, path)``."""
    err = errp[0]
    if err == ffi.NULL:
        return ffi.string(lib.ml_status_str(status)).decode("utf-8", "replace"), ""
    try:
        n = ffi.new("size_t *")
        p = lib.ml_error_message(err, n)
        message = ffi.unpack(p, n[0]).decode("utf-8", "replace")
        p = lib.ml_error_path(err, n)
        path = ffi.unpack(p, n[0]).decode("utf-8", "replace")
    finally:
        lib.ml_error_free(err)
    return message, path


def raise_status(status: int, errp: Any, source: Any = None) -> NoReturn:
    """Raises the exception for a failure status, freeing the error."""
    message, path = take_error(status, errp)
    if status == lib.ML_ERR_INVALID_POLICY:
        raise PolicyError(path, message, source)
    cls = NATIVE_ERRORS.get(status)
    if cls is None:
        raise NativeError(message, status)
    raise cls(message)


def status_name(status: int) -> str:
    cls = NATIVE_ERRORS.get(status)
    if status == 0:
        return "ok"
    if status == lib.ML_ERR_INVALID_POLICY:
        return "invalid_policy"
    return cls.status_name if cls else "unknown"
