"""Checksums and resource figures, defined once.

- ``xxhash64`` (seed 0, 16 lowercase hex digits): the per-file checksum of
  the manifests, computed while bytes are hot (:func:`xxh64_hex`) or read
  back (:func:`xxh64_file`, :func:`xxh64_files`).
- ``"sha256:<hex>"``: the data-integrity hashes of ``metadata.json`` and the
  dictionaries (:func:`sha256_file`, :func:`sha256_files`, :func:`sha256_json`).
- :func:`peak_rss_mb`: this process's peak resident set size.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import xxhash

from .errors import IoError

__all__ = ["peak_rss_mb", "sha256_file", "sha256_files", "sha256_json", "update_from_file", "xxh64_file", "xxh64_files", "xxh64_hex"]

_CHUNK: Final = 8 << 20


def update_from_file(h: Any, path: Path) -> int:
    """Feed a file's bytes to the hash object ``h``; returns the size. :class:`IoError` if unreadable."""
    from .atomic import open_regular  # a FIFO or device is refused, never waited on

    size = 0
    try:
        with open_regular(path) as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise IoError.from_os_error(path, exc) from exc
    return size


def xxh64_hex(data: bytes | memoryview) -> str:
    """xxh64 (seed 0) of ``data`` as 16 lowercase hex digits."""
    return xxhash.xxh64(data, seed=0).hexdigest()


def xxh64_file(path: str | os.PathLike[str]) -> tuple[int, str]:
    """``(size, xxh64 hex)`` of a file, read in 8 MiB chunks; :class:`IoError` if unreadable."""
    h = xxhash.xxh64(seed=0)
    size = update_from_file(h, Path(path))
    return size, h.hexdigest()


def xxh64_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """xxh64 hex of the concatenated bytes of ``paths``, in the given order."""
    h = xxhash.xxh64(seed=0)
    for p in paths:
        update_from_file(h, Path(p))
    return h.hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of one file's bytes; :class:`IoError` if unreadable."""
    h = hashlib.sha256()
    update_from_file(h, Path(path))
    return "sha256:" + h.hexdigest()


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """``"sha256:<hex>"`` of the concatenated bytes of ``paths``, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        update_from_file(h, Path(p))
    return "sha256:" + h.hexdigest()


def sha256_json(obj: Any) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of ``obj`` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def peak_rss_mb() -> float:
    """Peak resident set size of this process, MB (``ru_maxrss``)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 2**20 if sys.platform == "darwin" else kb / 1024.0
