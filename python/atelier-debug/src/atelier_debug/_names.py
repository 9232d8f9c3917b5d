"""Turning layer names and prefixes into valid MLflow metric keys.

MLflow (and Atelier) accept keys made of alphanumerics, ``_ - . space /`` (and ``:`` except on
Windows), at most 250 characters, that are "unique paths" (no ``..`` segment, no leading ``/``,
nothing that ``posixpath.normpath`` would change).

A *layer* name becomes one path segment, so ``gradients/<layer>/<stat>`` always splits into
exactly three parts on ``/``:

- every character outside ``[A-Za-z0-9_.- ]`` becomes ``_`` (so ``/`` and ``:`` too; non-ASCII
  letters as well, to keep keys identical on every platform and store);
- an empty name, or one made only of dots (``.``, ``..``), becomes ``_``;
- a name longer than 120 characters is cut to 111 and gets ``-`` plus 8 hex digits of its SHA-1;
- if two different layer names sanitise to the same text, the second one seen gets ``-`` plus
  8 hex digits of the SHA-1 of its original name (deterministic, not order-dependent).
"""

from __future__ import annotations

import hashlib
import re

MAX_LAYER_LEN = 120
_BAD = re.compile(r"[^A-Za-z0-9_.\- ]")
_BAD_PREFIX = re.compile(r"[^A-Za-z0-9_.\- /]")


def _digest(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def sanitize_layer(name: object) -> str:
    """The metric-key segment for one layer name (without collision handling)."""
    s = _BAD.sub("_", str(name))
    if s.strip(".") == "":
        s = "_" * max(1, len(s))
    if len(s) > MAX_LAYER_LEN:
        s = f"{s[: MAX_LAYER_LEN - 9]}-{_digest(str(name))}"
    return s


def sanitize_prefix(prefix: str | None) -> str:
    """``"a/b"`` -> ``"a/b/"`` (ready to prepend); ``None`` or ``""`` -> ``""``."""
    if not prefix:
        return ""
    segments = [_BAD_PREFIX.sub("_", seg) for seg in str(prefix).split("/") if seg]
    segments = ["_" * len(seg) if seg.strip(".") == "" else seg for seg in segments]
    return "/".join(segments) + "/" if segments else ""


class LayerNames:
    """Remembers original -> sanitised layer names for one logger, keeping them distinct."""

    def __init__(self) -> None:
        self._by_name: dict[str, str] = {}
        self._owner: dict[str, str] = {}

    def __call__(self, name: object) -> str:
        key = str(name)
        got = self._by_name.get(key)
        if got is not None:
            return got
        s = sanitize_layer(key)
        owner = self._owner.get(s)
        if owner is not None and owner != key:
            s = f"{s[: MAX_LAYER_LEN - 9]}-{_digest(key)}"
        self._owner.setdefault(s, key)
        self._by_name[key] = s
        return s
