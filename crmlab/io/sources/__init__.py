"""Adapters from real exports to the canonical tables, driven by ``shop.yaml``.

One module per adapter, each following a vendor's published schema (cited in its docstring):

========== ============================================ ==========================
adapter    export                                       tables
========== ============================================ ==========================
ga4        GA4 BigQuery export (events_YYYYMMDD)        events, orders
shopify    Shopify orders CSV (one row per line item)   orders
cafe24     Cafe24 order download (Korean headers)       orders
braze      Braze Currents message engagement events     messages
receipts   Kakao AlimTalk/FriendTalk, SMS/LMS receipts  messages
generic    any log with declared columns                any table
========== ============================================ ==========================

:func:`build` applies the sources of a mapping (:mod:`crmlab.io.sources.mapping`) and returns a
:class:`Built`: the outputs of each adapter, their exclusions ledger (every input row is mapped,
folded into another row, or excluded with a snake_case reason) and the combined
:class:`~crmlab.datasets.ShopData`. :func:`write` saves it as a report source folder.
:func:`import_to` (``crmlab import``) does both, reading GA4 exports file by file in bounded
memory (:mod:`crmlab.io.sources.stream`).
E-mail addresses and phone numbers become salted pseudonyms (:mod:`crmlab.io.sources.pii`).
The channel registry (:mod:`crmlab.io.sources.channels`) is open to channels declared in shop.yaml.

This package's ``__init__`` imports its adapters lazily, so ``crmlab.io.validate`` and
``crmlab.report.shop`` can read :mod:`crmlab.io.sources.channels` without an import circle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .base import Output
    from .mapping import Mapping

__all__ = ["Built", "build", "write", "import_to", "load_mapping"]


def load_mapping(path, root=None) -> "Mapping":
    from .mapping import load
    return load(path, root)


@dataclass
class Built:
    mapping: "Mapping"
    outputs: list["Output"] = field(default_factory=list)

    def data(self, outputs: list["Output"] | None = None):
        """The canonical tables of ``outputs`` (default: all), concatenated per table, as ShopData."""
        import pandas as pd

        from ..shopdata import ShopData
        tables: dict[str, list] = {}
        for o in self.outputs if outputs is None else outputs:
            for name, df in o.tables.items():
                tables.setdefault(name, []).append(df)
        return ShopData(**{n: pd.concat(fs, ignore_index=True) if len(fs) > 1 else fs[0]
                           for n, fs in tables.items()}, name=self.mapping.root.name)

    def exclusions(self) -> "pd.DataFrame":
        import pandas as pd
        return pd.concat([o.exclusions() for o in self.outputs], ignore_index=True)


def adapt(src, m) -> "Output":
    """Run one source's adapter; a DataError names the source."""
    module = import_module(f".{src.adapter}", __name__)
    return _named(src, module.adapt, src, m)


def _named(src, fn, *args):
    """``fn(*args)``; a DataError names the source ``src``."""
    from ..errors import DataError
    try:
        return fn(*args)
    except DataError as e:
        if f"source '{src.name}'" in e.rule:
            raise
        raise DataError(e.table, e.column, f"source '{src.name}' ({src.adapter}): {e.rule}", e.n_rows,
                        e.examples, hint=_hint(e)) from None


def _hint(e) -> str | None:
    """The hint part of a DataError's first line (DataError keeps no separate attribute for it)."""
    where = f"table '{e.table}'" + (f", column '{e.column}'" if e.column else "")
    head = f"{where}: {e.rule}" + (f" ({e.n_rows:,} row{'s' if e.n_rows != 1 else ''})" if e.n_rows else "")
    rest = str(e).split("\n", 1)[0][len(head):]
    return rest[2:] if rest.startswith(". ") else None


def build(mapping, root: str | Path | None = None, *, only: list[str] | None = None) -> Built:
    """Apply every source of ``mapping`` (a Mapping, or the path of a shop.yaml) and return the result."""
    from .mapping import Mapping, load
    m = mapping if isinstance(mapping, Mapping) else load(mapping, root)
    built = Built(m)
    for src in m.sources:
        if only is None or src.name in only:
            built.outputs.append(adapt(src, m))
    return built


def validate(built: Built) -> dict[tuple[str, str], str | None]:
    """``{(source, table): first rule broken or None}`` for each adapter output (data-model rules)."""
    from ..errors import DataError
    from ..validate import canonical
    out = {}
    for o in built.outputs:
        for table, df in o.tables.items():
            try:
                canonical(df, table, tz=built.mapping.timezone)
                out[(o.source, table)] = None
            except DataError as e:
                out[(o.source, table)] = str(e).splitlines()[0]
    return out


def write(built: Built, folder: str | Path) -> Path:
    """The built tables as a report source: ``<table>.parquet``, ``shop.yaml`` (currency, zone,
    declared channels; no salt) and ``exclusions.csv`` (the ledger)."""
    import yaml
    folder = Path(folder)
    built.data().to_parquet(folder)
    (folder / "shop.yaml").write_text(yaml.safe_dump(built.mapping.settings(), allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
    built.exclusions().to_csv(folder / "exclusions.csv", index=False)
    return folder


def import_to(mapping, folder: str | Path, root: str | Path | None = None):
    """What ``crmlab import`` does: apply every source of ``mapping`` and write the report source
    folder ``folder``, as :func:`write` does, GA4 sources in bounded memory
    (:mod:`crmlab.io.sources.stream`: their tables become folders of Parquet parts,
    ``events.parquet/part-0000.parquet`` ..., holding the other sources' rows of the table too).

    Returns ``(built, rows, bad)``: ``built`` (GA4 outputs hold their ledgers and ``written``
    row counts, not their tables), ``{table: rows written}`` and ``{(source, table): first rule
    broken}`` for the tables that are not valid; when ``bad`` is not empty nothing is written."""
    import shutil

    import pandas as pd
    import yaml

    from ..errors import DataError
    from ..validate import canonical
    from .mapping import Mapping, load
    from .stream import align_parts, import_ga4, write_part
    m = mapping if isinstance(mapping, Mapping) else load(mapping, root)
    folder = Path(folder)
    tmp = folder.parent / f".{folder.name}.crmlab-import"  # beside it: nothing in ``folder`` until valid
    if tmp.exists():
        shutil.rmtree(tmp)
    built = Built(m)
    parts: dict[str, list[Path]] = {}
    owners: dict[str, list[str]] = {}
    try:
        for src in m.sources:
            if src.adapter == "ga4":
                o, written = _named(src, import_ga4, src, m, tmp, tmp / ".stage")
                for table, paths in written.items():
                    parts.setdefault(table, []).extend(paths)
                    owners.setdefault(table, []).append(src.name)
                built.outputs.append(o)
            else:
                built.outputs.append(adapt(src, m))
        bad = {k: v for k, v in validate(built).items() if v}
        frames: dict[str, list] = {}
        for o in built.outputs:
            for name, df in o.tables.items():
                frames.setdefault(name, []).append(df)
        rows = {}
        for name, fs in frames.items():
            df = pd.concat(fs, ignore_index=True) if len(fs) > 1 else fs[0]
            if name in parts:
                path = tmp / f"{name}.parquet" / f"part-{len(parts[name]):04d}.parquet"
                write_part(df, path)
                align_parts([*parts[name], path])
            else:
                tmp.mkdir(parents=True, exist_ok=True)
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            rows[name] = len(df)
        for name in parts:
            rows[name] = rows.get(name, 0) + sum(o.written.get(name, 0) for o in built.outputs)
            try:
                canonical(tmp / f"{name}.parquet", name, tz=m.timezone)
            except DataError as e:
                bad[(", ".join(owners[name]), name)] = str(e).splitlines()[0]
        if bad:
            return built, rows, bad
        folder.mkdir(parents=True, exist_ok=True)
        for name in rows:
            dest = folder / f"{name}.parquet"
            if dest.is_dir():
                shutil.rmtree(dest)
            elif dest.exists():
                dest.unlink()
            (tmp / f"{name}.parquet").rename(dest)
        (folder / "shop.yaml").write_text(yaml.safe_dump(m.settings(), allow_unicode=True, sort_keys=False),
                                          encoding="utf-8")
        built.exclusions().to_csv(folder / "exclusions.csv", index=False)
        return built, rows, {}
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
