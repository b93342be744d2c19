"""Feature references (``view:feature``) and the "did you mean" suggestions of errors."""

from __future__ import annotations

import difflib
import re

from plinth.core.errors import InvalidInput

__all__ = ["closest", "split_ref"]

_REF = re.compile(r"^(?P<view>[A-Za-z0-9][A-Za-z0-9._-]{0,99}):(?P<feature>[A-Za-z_][A-Za-z0-9_]{0,99})$")


def split_ref(ref: object) -> tuple[str, str]:
    """``("driver_stats", "conv_rate")`` of ``"driver_stats:conv_rate"``; InvalidInput otherwise."""
    if not isinstance(ref, str):
        raise InvalidInput(f"a feature reference must be a string 'view:feature', got {ref!r}", field="features")
    m = _REF.match(ref.strip())
    if not m:
        raise InvalidInput(
            f"{ref!r} is not a feature reference: expected 'view:feature', e.g. 'driver_stats:conv_rate'",
            field="features",
        )
    return m["view"], m["feature"]


def closest(word: str, choices: list[str], n: int = 3, cutoff: float | None = None) -> str:
    """'; did you mean 'a' or 'b'?' for the nearest choices (difflib), or '' when none is near.

    References (``view:feature``) share long prefixes, so they need a stricter cutoff.
    """
    if cutoff is None:
        cutoff = 0.8 if ":" in word else 0.6
    near = difflib.get_close_matches(word, choices, n=n, cutoff=cutoff)
    if not near:
        return ""
    quoted = [repr(c) for c in near]
    shown = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"; did you mean {shown}?"
