"""Lua code runs in the C locale, whatever the process's locale (docs/sandbox.md, Determinism).

Lua's C library reads the locale: ``tostring(1.5)``, ``string.format`` and ``..`` print the
locale's decimal point (``1,5`` in de_DE), ``"a" < "b"`` compares with ``strcoll``, which
also orders ``pairs``; ``os.date("%A")`` names days in the locale's language; ``%a`` in a
pattern follows the locale's character classes. Any Python code in the worker process (a
``function.python`` handler) may call ``locale.setlocale``; a replay on another machine runs
under yet another locale. :func:`pin_c_locale` gives the calling thread its own C locale
(POSIX ``uselocale``), which a later ``setlocale`` in any thread does not change; the driver
calls it before it resumes Lua, so every thread that runs Lua code runs it in the C locale.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
import threading

__all__ = ["pin_c_locale"]

_pinned = threading.local()


def _c_locale() -> tuple[ctypes.CDLL, int] | None:
    """libc and a ``locale_t`` for "C" in every category, or None where POSIX locales are missing."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        newlocale, uselocale = libc.newlocale, libc.uselocale
    except (OSError, AttributeError):
        return None
    newlocale.restype, newlocale.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    uselocale.restype, uselocale.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    # LC_ALL_MASK: every category; its value differs between C libraries
    if sys.platform == "darwin":
        mask = (1 << 6) - 1
    elif platform.libc_ver()[0] == "glibc":
        mask = ((1 << 13) - 1) & ~(1 << 6)      # LC_CTYPE..LC_IDENTIFICATION, without LC_ALL (6)
    else:
        mask = 0x7FFFFFFF                       # musl
    handle = newlocale(mask, b"C", None)
    if not handle:
        return None
    # LC_CTYPE from C.UTF-8 where it exists: it classifies and maps every byte as C does (bytes
    # above 127 are no letters, toupper leaves them), and Python code on the thread (text
    # files, subprocess output) keeps decoding UTF-8 instead of ASCII
    ctype_mask = 1 << 1 if sys.platform == "darwin" else 1
    with_utf8 = newlocale(ctype_mask, b"C.UTF-8", ctypes.c_void_p(handle))
    return libc, (with_utf8 or handle)


_C_LOCALE = _c_locale()


def pin_c_locale() -> None:
    """Make the calling thread use the C locale from now on (once per thread; cheap after that)."""
    if getattr(_pinned, "done", False):
        return
    _pinned.done = True
    if _C_LOCALE is not None:
        libc, handle = _C_LOCALE
        libc.uselocale(ctypes.c_void_p(handle))
