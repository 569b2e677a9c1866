"""Reading vendor export files: CSV in UTF-8 (with or without BOM) or CP949, newline-delimited
JSON (BigQuery's and Braze's export form), Parquet; CSV and JSON may be gzipped (``.json.gz``);
a folder means every such file in it."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..errors import DataError

ENCODINGS = ("utf-8-sig", "cp949")
_SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson", ".parquet", ".pq")


def _kind(path: Path) -> str:
    """The export's suffix, ignoring a ``.gz`` (``bq extract --compression GZIP``)."""
    name = path.name.lower()
    return Path(name[:-3]).suffix if name.endswith(".gz") else path.suffix.lower()


def _bytes(path: Path) -> bytes:
    import gzip
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw


def files(path: Path, table: str) -> list[Path]:
    """The export files at ``path`` (a file, or the files of a folder, sorted)."""
    if not path.exists():
        raise DataError(table, None, f"export not found: {path}",
                        hint="paths in shop.yaml's sources are relative to the SOURCE folder")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p) in _SUFFIXES)
    if not found:
        raise DataError(table, None, f"folder {path} holds no .csv, .json(l) or .parquet export")
    return found


def decode(raw: bytes, path: Path, table: str) -> str:
    """``raw`` as text: UTF-8 (a BOM is dropped) or else CP949 (Excel's Korean default)."""
    for enc in ENCODINGS:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise DataError(table, None, f"{path.name}: neither UTF-8 nor CP949 text",
                    hint="save the export as CSV UTF-8 (Excel: 'CSV UTF-8 (Comma delimited)')")


def read_csv(path: Path, table: str) -> pd.DataFrame:
    """Every column as text (ids keep their leading zeros; numbers are parsed by the adapter)."""
    import io
    text = decode(_bytes(path), path, table)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as e:
        raise DataError(table, None, f"{path.name}: not a well-formed CSV ({' '.join(str(e).split())})") from None


def read_jsonl(path: Path, table: str) -> pd.DataFrame:
    rows = []
    text = decode(_bytes(path), path, table)
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(table, None, f"{path.name} line {i}: not valid JSON ({e.msg})") from None
    return pd.DataFrame(rows)


def read_any(path: Path, table: str) -> pd.DataFrame:
    """All export files at ``path`` as one frame (``_file``: each row's file, relative to a folder)."""
    return read_files(files(path, table), path, table)


def read_files(found: list[Path], path: Path, table: str) -> pd.DataFrame:
    """The export files ``found`` (of ``path``, a file or folder) as one frame, see :func:`read_any`."""
    frames = []
    for f in found:
        suffix = _kind(f)
        if suffix == ".csv":
            df = read_csv(f, table)
        elif suffix in (".parquet", ".pq"):
            df = pd.read_parquet(f)
        else:
            df = read_jsonl(f, table)
        frames.append(df.assign(_file=str(f.relative_to(path)) if path.is_dir() else f.name))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def require_columns(df: pd.DataFrame, columns, table: str, source: str, vendor: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(table, missing[0], f"source '{source}': the {vendor} export lacks column(s) {missing}",
                        hint=f"columns present: {[c for c in df.columns if c != '_file']}; rename them under "
                             f"sources.{source}.columns in shop.yaml")


def numbers(values: pd.Series, table: str, column: str, examples) -> pd.Series:
    """Amount text (``12,000``, ``₩12,000``, ``12000.00``) as floats; a DataError on anything else."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.replace(r"[,\s₩$€¥원]", "", regex=True)
    text = text.mask(text.eq(""))
    num = pd.to_numeric(text, errors="coerce")
    bad = num.isna() & text.notna()
    if bad.any():
        raise DataError(table, column, "expected an amount", int(bad.sum()), examples(bad))
    return num.astype(float)
