"""Tell proton's SASL layer who the TLS peer is (for EXTERNAL), though TLS is not proton's.

Proton offers and accepts SASL EXTERNAL only when its transport knows an "external"
identity, which its own SSL layer would set. TLS here is done by Python's ``ssl`` (the
endpoint's memory BIOs), so the identity is set through
``pni_sasl_set_external_security``: exported by the binding's ``cproton_ffi`` library
but not wrapped by it, so it is reached with ``ctypes`` (docs/adr/0034-sasl-external.md).
Proton's server also calls it itself when the client's SASL header arrives (with its
SSL layer's values: none), so ``ClientConnection`` calls this right after the header.
"""

from __future__ import annotations

import ctypes
import importlib.util
from typing import Any, Final

from cproton import ffi

from .errors import AmqpUsageError

_SYMBOL: Final = "pni_sasl_set_external_security"


def _load() -> tuple[Any, str | None]:
    try:
        spec = importlib.util.find_spec("cproton_ffi")  # the library cproton's ``lib`` is
        if spec is None or spec.origin is None:
            raise ImportError("no cproton_ffi module")
        function = getattr(ctypes.CDLL(spec.origin), _SYMBOL)
    except (ImportError, OSError, AttributeError, ValueError) as error:
        return None, (
            f"SASL EXTERNAL is not available: the proton library does not export {_SYMBOL} "
            f"({error})"
        )
    function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    function.restype = None
    return function, None


_SET_EXTERNAL, _UNAVAILABLE = _load()


def external_unavailable() -> str | None:
    """Why SASL EXTERNAL cannot be offered in this process, or None when it can."""
    return _UNAVAILABLE


def set_external_security(transport: Any, ssf: int, authid: str | None) -> None:
    """Give proton's ``transport`` the TLS peer's identity and the cipher's strength."""
    if _SET_EXTERNAL is None:
        raise AmqpUsageError(_UNAVAILABLE or "SASL EXTERNAL is not available")
    address = int(ffi.cast("uintptr_t", transport))
    _SET_EXTERNAL(address, ssf, None if authid is None else authid.encode("utf-8"))
