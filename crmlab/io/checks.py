"""Parameter checks shared by every module: one wording for one mistake."""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd


def duration(value, name: str, *, optional: bool = False) -> pd.Timedelta | None:
    """``value`` as a positive ``pd.Timedelta`` ('3D', '30min', '24h' or a Timedelta).

    ``None`` is returned as is when ``optional``; otherwise, like an unparseable or
    non-positive span, it raises ``ValueError`` naming the parameter.
    """
    if value is None and optional:
        return None
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise ValueError(f"{name}={value!r} is not a time span; give a pd.Timedelta or a string "
                         "such as '3D', '24h' or '30min'") from None
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ValueError(f"{name}={value!r} must be a positive time span")
    return td


def choice(value, name: str, allowed: Sequence):
    """``value`` if it is one of ``allowed``, else ``ValueError`` naming the parameter."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {list(allowed)}")
    return value


def alpha(value, name: str = "alpha") -> float:
    """A significance level strictly between 0 and 1, as a float; else ``ValueError``."""
    try:
        ok = not isinstance(value, bool) and 0 < float(value) < 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r}: must be a number strictly between 0 and 1")
    return float(value)


def positive(value, name: str, what: str = "a positive number") -> float:
    """``value`` as a finite float greater than 0; else ``ValueError`` naming the parameter."""
    try:
        ok = float(value) > 0 and math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r}: must be {what}")
    return float(value)
