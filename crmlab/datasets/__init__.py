"""Bundled sample data, converted to the canonical tables.

- :func:`load_cdnow` — CDNOW transactions (23,570 customers, 1997-01..1998-06) as ``orders``.
- :func:`load_cdnow_sample` — its 1/10 sample (2,357 customers) used by Fader, Hardie & Lee (2005).
- :func:`load_hillstrom` — the MineThatData e-mail test (64,000 customers) as customers,
  messages, assignments, orders and events, plus the two-week ``outcomes``.
- :func:`synthetic_shop` — a generated Korean own-brand shop with planted truth.
"""
from .core import ShopData, load_source
from .cdnow import load_cdnow, load_cdnow_sample
from .hillstrom import load_hillstrom

__all__ = ["ShopData", "load_source", "load_cdnow", "load_cdnow_sample", "load_hillstrom", "synthetic_shop"]


def synthetic_shop(n_users: int = 5_000, weeks: int = 12, seed: int = 0, **kwargs) -> ShopData:
    """Generate a Korean own-brand shop; see :mod:`crmlab.datasets.synthetic`."""
    from .synthetic import synthetic_shop as _gen
    return _gen(n_users=n_users, weeks=weeks, seed=seed, **kwargs)
