"""Publishing a week of reports: one lock per reports folder, one atomic switch per run.

Layout of a reports folder::

    reports/.lock                         flock'ed by the run that is writing
    reports/.versions/2026-W47.<token>/   one complete version of a week: *.ipynb, *.html, manifest.json
    reports/2026-W47 -> .versions/2026-W47.<token>   (a relative symlink: what readers open)
    reports/index.html
    reports/.tmp-*                        a running (or killed) run's private work; cleaned next run

Why a symlink: POSIX ``rename(2)`` replaces a *file or symlink* atomically, but cannot replace a
non-empty directory. So a run builds the new version in its private folder, renames it into
``.versions/`` (invisible to readers), makes a new symlink under a unique temporary name and
``os.replace``-s it over ``reports/<week>``: a reader, a crash or ``kill -9`` sees the old version
or the new one, whole, never a mix. The old version is deleted only after the switch.

Everything under the reports folder is written while holding :func:`locked`, so any ``.tmp-*``
entry or unreferenced version found by a lock holder belongs to a dead run and is removed
(:func:`clean_leftovers`). ``flock`` locks are released by the kernel when their holder dies,
``kill -9`` included, so a killed run never leaves the folder locked.
"""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = ".lock"
VERSIONS = ".versions"
TMP_PREFIX = ".tmp-"
_WEEK = re.compile(r"[0-9]{4}-W[0-9]{2}")
_POLL_SECONDS = 0.2


class PublishError(Exception):
    """The reports folder cannot be written (read-only, full disk, permissions): exit code 4."""


class LockBusy(PublishError):
    """Another run holds the reports folder's lock (and did not release it in time)."""


def cannot_write(path: Path | str, exc: OSError) -> PublishError:
    """A one-line :class:`PublishError` for an ``OSError`` while writing under ``path``."""
    reason = exc.strerror or str(exc)
    where = exc.filename or path
    return PublishError(f"cannot write {where}: {reason}" + (f" (errno {errno.errorcode.get(exc.errno, exc.errno)})"
                                                             if exc.errno else ""))


# ---------------------------------------------------------------------------------------------- lock
def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


@contextmanager
def locked(out_dir: str | Path, *, timeout: float | None = 600.0,
           on_wait: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the reports folder's lock for the block.

    ``timeout`` seconds to wait for another run to finish (``0``: do not wait; ``None``: wait
    for ever). ``on_wait(message)`` is called once when the lock is busy. Raises
    :class:`LockBusy` when the time is up and :class:`PublishError` if the folder cannot be
    created or written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise cannot_write(out, e) from None
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                busy = f"another run is publishing into {out}{_holder(fd)}"
                if deadline is not None and time.monotonic() >= deadline:
                    waited = f" after waiting {timeout:g} s" if timeout else ""
                    raise LockBusy(f"{busy}{waited}; nothing was written (see --lock-timeout)") from None
                if not told and on_wait is not None:
                    on_wait(f"{busy}; waiting for it to finish")
                    told = True
                time.sleep(_POLL_SECONDS)
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            os.write(fd, f"pid {os.getpid()} since {now}\n".encode())
        except OSError as e:
            raise cannot_write(out / LOCK_NAME, e) from None
        yield out
    finally:
        os.close(fd)  # releases the flock


# ---------------------------------------------------------------------------------------------- cleanup
def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def week_target(out_dir: Path, week: str) -> Path | None:
    """The version folder ``reports/<week>`` shows (itself when it is a plain folder), or None."""
    p = out_dir / week
    if p.is_symlink():
        target = (out_dir / os.readlink(p))
        return target if target.is_dir() else None
    return p if p.is_dir() else None


def clean_leftovers(out_dir: str | Path) -> list[str]:
    """Remove what killed runs left: ``.tmp-*`` entries and versions no week points to.

    Call only while holding :func:`locked` (then no other run is alive in this folder). A
    plain week folder that a killed run had moved aside (``.tmp-legacy-<week>-*``) while
    migrating to the symlink layout is put back first. Returns the names removed.
    """
    out = Path(out_dir)
    removed = []
    for p in sorted(out.glob(f"{TMP_PREFIX}legacy-*")):
        week = p.name[len(f"{TMP_PREFIX}legacy-"):][:8]
        if _WEEK.fullmatch(week) and not (out / week).exists() and not (out / week).is_symlink():
            os.rename(p, out / week)  # the run died between moving it aside and the switch
    for p in sorted(out.glob(f"{TMP_PREFIX}*")):
        _remove(p)
        removed.append(p.name)
    versions = out / VERSIONS
    if versions.is_dir():
        used = {t.resolve() for w in out.iterdir() if _WEEK.fullmatch(w.name)
                for t in [week_target(out, w.name)] if t is not None}
        for v in sorted(versions.iterdir()):
            if v.resolve() not in used:
                _remove(v)
                removed.append(f"{VERSIONS}/{v.name}")
    return removed


def work_dir(out_dir: str | Path) -> Path:
    """A fresh private folder for one run inside the reports folder (same file system, so the
    results can be renamed into place). Its name is unique: no two runs share a temp name."""
    try:
        return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}run-", dir=str(out_dir)))
    except OSError as e:
        raise cannot_write(out_dir, e) from None


# ---------------------------------------------------------------------------------------------- versions
def _fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable (a power cut after the switch keeps it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            with open(f, "rb+") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def stage(out_dir: Path, week: str, staged: Path) -> Path:
    """Start the new version of ``week`` in ``staged``: a copy of what is published now (reports
    of other notebooks of that week are carried over unchanged). Returns ``staged``."""
    current = week_target(out_dir, week)
    staged.mkdir(parents=True)
    if current is not None:
        for f in sorted(current.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                shutil.copy2(f, staged / f.name)
    return staged


def read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except json.JSONDecodeError:
        return {}


def write_manifest(folder: Path, manifest: dict) -> None:
    """Written into the run's private version folder: no temp name shared with any other run."""
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str),
                                          encoding="utf-8")


def switch(out_dir: Path, week: str, staged: Path) -> Path:
    """Make ``staged`` the published version of ``week`` in one atomic step; return its folder.

    Steps (a kill after any of them leaves the old or the new version whole; leftovers are
    removed by the next run's :func:`clean_leftovers`):

    1. fsync the staged files; rename the folder to ``.versions/<week>.<token>`` (not yet shown);
    2. create a symlink to it under a unique ``.tmp-link-*`` name;
    3. ``os.replace`` that symlink over ``reports/<week>``: the switch;
    4. delete the version that was shown before.

    A week still published as a plain folder (before this layout) is first moved aside to
    ``.tmp-legacy-<week>-*``; only in this one-time migration is there a moment without the week,
    and a run killed then has the old folder put back by the next run.
    """
    token = uuid.uuid4().hex[:12]
    versions = out_dir / VERSIONS
    versions.mkdir(exist_ok=True)
    _fsync_tree(staged)
    final = versions / f"{week}.{token}"
    os.rename(staged, final)
    link = out_dir / f"{TMP_PREFIX}link-{token}"
    os.symlink(os.path.join(VERSIONS, final.name), link)
    shown = out_dir / week
    old: Path | None = None
    if shown.is_symlink():
        old = week_target(out_dir, week)
    elif shown.exists():
        old = out_dir / f"{TMP_PREFIX}legacy-{week}-{token}"
        os.rename(shown, old)
    os.replace(link, shown)  # the atomic switch
    _fsync_dir(out_dir)
    if old is not None and old.resolve() != final.resolve():
        _remove(old)
    return final
