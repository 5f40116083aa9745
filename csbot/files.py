"""Writing files and folders so that a crash, a full disk or a second process never leaves half of one.

One rule for every saved artifact (a model version, the converted e5 model, an encoder's ONNX
export, the answer index's generations): a folder is filled under a name of its own, unique to
this writer (`.<name>.<random>.partial`, beside the target), flushed to disk, and only then renamed
into place in one step. A reader sees the whole folder or none of it; two processes writing the
same folder at once never share a work folder, and the second finds the first's finished one.
A work folder left by a killed writer is removed by a later write once it is an hour old.

This module knows no artifact: what goes in a folder, and what a folder already there means, is
the caller's.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

STALE_SECONDS = 3600  # a work folder this old belongs to a writer that died


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` and flush it to disk before returning."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a folder's entries (a rename into it, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_folder(target: Path, fill: Callable[[Path], None], *, exists: str = "keep") -> bool:
    """Fill a fresh work folder with `fill(work)`, flush it, and rename it to `target` atomically.

    `exists` says what a `target` already there (or made by another process meanwhile) means:
    "keep" - it is as good as ours (the same input made it): keep it, drop ours;
    "refuse" - raise FileExistsError, leaving it as it was;
    "replace" - ours replaces it (renamed aside first, then removed; a reader in between finds none).
    Returns whether ours is the one in place. On any failure nothing of ours is left behind.

    Example: write_folder(models / "v1", lambda work: (work / "meta.json").write_text("{}"), exists="refuse")
    """
    target = Path(target)
    if exists not in ("keep", "refuse", "replace"):
        raise ValueError(f"exists must be keep, refuse or replace; found {exists!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    work = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    work.mkdir()
    try:
        fill(work)
        for path in sorted(work.rglob("*")):
            if path.is_file():
                fsync_file(path)
        if exists == "replace" and target.exists():
            aside = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
            try:
                target.rename(aside)
            except FileNotFoundError:
                pass  # another writer moved it aside first
            else:
                shutil.rmtree(aside, ignore_errors=True)
        if exists == "refuse" and target.exists():
            raise FileExistsError(f"{target} exists")
        try:
            work.rename(target)  # fails on a non-empty folder there: never merges two
        except OSError:
            if not target.is_dir():
                raise
            if exists == "refuse":
                raise FileExistsError(f"{target} exists") from None
            return False  # keep (or replace, beaten by a writer as fresh as us): theirs stands
        fsync_dir(target.parent)
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_stale_work(folder: Path) -> list[Path]:
    """Remove the work folders and files in `folder` that writers which died left behind (older than
    STALE_SECONDS): a training run killed mid-save leaves one under a name no later write reuses.
    Returns what was removed. Example: remove_stale_work(settings.models_dir) -> [.../.v2026....partial]"""
    removed = []
    for stale in Path(folder).glob(".*.partial") if Path(folder).is_dir() else ():
        try:
            if stale.stat().st_mtime < time.time() - STALE_SECONDS:
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
                removed.append(stale)
        except FileNotFoundError:
            pass
    return removed


def _remove_stale(target: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for stale in target.parent.glob(f".{target.name}.*.partial"):
        try:
            if stale.stat().st_mtime < cutoff:
                shutil.rmtree(stale, ignore_errors=True)
        except FileNotFoundError:
            pass
