"""A content-hash embedding cache on disk: unchanged assets are never encoded twice.

Vectors are keyed by ``(sha256 of the item's content, encoder.id)`` and stored in one SQLite
file in WAL mode: any number of processes may read while one writes, a reader never sees a
half-written batch (each batch is one transaction), and a crash loses at most the batch in
flight. Writers from several processes take turns (they wait up to ``timeout`` seconds).

Each vector is stored with a checksum of its key and bytes: a vector that fails it (bytes
overwritten on disk, a torn page that SQLite's own checks miss) counts as a miss and is
encoded again, never served. With ``on_corrupt="move_aside"`` a cache file SQLite cannot read
(truncated, a garbage header, a malformed page) is renamed to ``<file>.corrupt-<time>`` and a
new cache is started: it is derived data, rebuilt as vectors are encoded.

>>> import tempfile
>>> from embeddings.precomputed import PrecomputedEmbeddings
>>> encoder = PrecomputedEmbeddings(dim=2)
>>> with EmbeddingCache(tempfile.mkdtemp()) as cache:
...     first = cache.encode(encoder, [[3.0, 4.0], [0.0, 1.0]])
...     again = cache.encode(encoder, [[3.0, 4.0]])
...     cache.stats
CacheStats(hits=1, misses=2)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from embeddings._progress import progress_bar, show_progress
from embeddings.encoder import (
    EmbeddingInputError,
    Encoder,
    as_item_list,
    check_batch_size,
    content_digest,
)
from embeddings.errors import EmbeddingsError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

logger = logging.getLogger(__name__)

#: File name used when the cache path is a folder.
CACHE_FILE_NAME = "embeddings.sqlite"
_SCHEMA_VERSION = "2"  # 2: a checksum per vector (caches of schema 1 are upgraded)
_FILE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_SQL_CHUNK = 500  # digests per SELECT (well under SQLite's bound-parameter limit)


class EmbeddingCacheError(EmbeddingsError, OSError):
    """The cache file cannot be opened, is not an embedding cache, or is inconsistent."""


@dataclass(frozen=True)
class CacheStats:
    """Hit and miss counts (one per item; a repeated item within a call counts each time)."""

    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        """Fraction of items served from the cache (0.0 when nothing was asked)."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


@dataclass(frozen=True, eq=False)
class CacheLookup:
    """Result of :meth:`EmbeddingCache.lookup`.

    ``vectors`` is float32 ``(n, dim)`` (rows of misses are NaN); ``found`` is a bool mask.
    """

    vectors: np.ndarray
    found: np.ndarray


class EmbeddingCache:
    """Persisted embedding cache keyed by content hash and encoder id.

    Parameters
    ----------
    path : str or Path
        A folder (the cache lives in ``<folder>/embeddings.sqlite``, created if missing), or
        a file path ending in ``.sqlite``, ``.sqlite3`` or ``.db``.
    timeout : float
        Seconds a writer waits for another process's write to finish.
    on_corrupt : {"raise", "move_aside"}
        What a file SQLite cannot read does: ``"raise"`` (default) an
        :class:`EmbeddingCacheError`; ``"move_aside"`` renames it (and its ``-wal``/``-shm``
        files) to ``<file>.corrupt-<time>``, logs a warning, lists it in :attr:`moved_aside`
        and starts a new cache.

    The cache is safe to share between processes and threads; a process that forks reopens
    its own connection. Use :meth:`encode` (or :meth:`wrap` to get a caching encoder) and
    read :attr:`stats` for hits and misses. :attr:`repaired` counts stored vectors that
    failed their checksum and were encoded again.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 60.0,
        on_corrupt: Literal["raise", "move_aside"] = "raise",
    ) -> None:
        if on_corrupt not in ("raise", "move_aside"):
            raise EmbeddingInputError(
                f"on_corrupt={on_corrupt!r} is not an option; choose 'raise' or 'move_aside'."
            )
        path = Path(path)
        if path.suffix in _FILE_SUFFIXES or path.is_file():
            self.path = path
        else:
            self.path = path / CACHE_FILE_NAME
        self.timeout = float(timeout)
        self.on_corrupt = on_corrupt
        self.moved_aside: list[Path] = []
        self.repaired = 0
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._lock = threading.RLock()
        self._hits = 0
        self._misses = 0
        self._connect()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"

    # -- connection ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                return self._conn
            try:
                return self._open()
            except EmbeddingCacheError as exc:
                cause = exc.__cause__
                corrupt = isinstance(cause, sqlite3.DatabaseError) and _is_corruption(cause)
                if not corrupt or self.on_corrupt == "raise":
                    raise
                self._move_aside(cause)
                return self._open()

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
                with _transaction(conn):
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS meta "
                        "(key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS encoders (eid INTEGER PRIMARY KEY, "
                        "encoder_id TEXT NOT NULL UNIQUE, dim INTEGER NOT NULL)"
                    )
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS vectors (eid INTEGER NOT NULL, digest BLOB "
                        "NOT NULL, vector BLOB NOT NULL, checksum BLOB, "
                        "PRIMARY KEY (eid, digest)) WITHOUT ROWID"
                    )
                    conn.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (_SCHEMA_VERSION,),
                    )
                    row = conn.execute(
                        "SELECT value FROM meta WHERE key='schema_version'"
                    ).fetchone()
                    if row is not None and row[0] == "1":  # no checksums yet: add the column;
                        # its vectors have none, so they are encoded again on first use
                        conn.execute("ALTER TABLE vectors ADD COLUMN checksum BLOB")
                        conn.execute(
                            "UPDATE meta SET value=? WHERE key='schema_version'", (_SCHEMA_VERSION,)
                        )
                        row = (_SCHEMA_VERSION,)
            except sqlite3.OperationalError as exc:
                if _is_disk_full(exc):
                    raise _disk_full_error(self.path) from exc
                raise EmbeddingCacheError(
                    f"cannot open the embedding cache {str(self.path)!r} ({exc}); point the "
                    "cache at a new folder, or delete the file if it is not needed."
                ) from exc
            except sqlite3.DatabaseError as exc:
                raise EmbeddingCacheError(
                    f"cannot open the embedding cache {str(self.path)!r} ({exc}); point the "
                    "cache at a new folder, or delete the file if it is not needed."
                ) from exc
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise _disk_full_error(self.path) from exc
                raise EmbeddingCacheError(
                    f"cannot create the embedding cache {str(self.path)!r} ({exc}); choose a "
                    "writable folder."
                ) from exc
            if row is None or row[0] != _SCHEMA_VERSION:
                conn.close()
                raise EmbeddingCacheError(
                    f"{str(self.path)!r} has cache schema {row and row[0]!r}, this version "
                    f"reads {_SCHEMA_VERSION!r}; use a new cache folder."
                )
            self._conn, self._pid = conn, os.getpid()
            return conn

    def _move_aside(self, exc: BaseException) -> None:
        """Rename an unreadable cache file (and its WAL files) and forget the connection."""
        with self._lock:
            if self.on_corrupt != "move_aside":
                raise EmbeddingCacheError(
                    f"the embedding cache {str(self.path)!r} is unreadable ({exc}); it holds "
                    "only derived data: delete or rename it and the vectors are encoded again."
                ) from exc
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
            for suffix in ("", "-wal", "-shm", "-journal"):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(f"{target}{suffix}")
            self.moved_aside.append(target)
            logger.warning(
                "the embedding cache %s is unreadable (%s); moved it aside to %s and started "
                "a new one (its vectors are encoded again as needed)",
                self.path,
                exc,
                target,
            )

    def _guarded(self, operation: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``operation(conn)``; a corrupt file is moved aside (when allowed), then retried."""
        with self._lock:
            try:
                return operation(self._connect())
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and _is_disk_full(exc):
                    raise _disk_full_error(self.path) from exc
                if not _is_corruption(exc):
                    raise EmbeddingCacheError(
                        f"the embedding cache {str(self.path)!r} failed: {exc}"
                    ) from exc
                self._move_aside(exc)
                return operation(self._connect())

    def close(self) -> None:
        """Close this process's connection (the cache reopens it if used again)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statistics ------------------------------------------------------------------------
    @property
    def stats(self) -> CacheStats:
        """Hits and misses counted by :meth:`encode` since creation or :meth:`reset_stats`."""
        return CacheStats(hits=self._hits, misses=self._misses)

    def reset_stats(self) -> None:
        """Set the hit and miss counts back to zero."""
        self._hits = self._misses = 0

    def __len__(self) -> int:
        """Number of stored vectors, all encoders together."""
        return int(
            self._guarded(lambda conn: conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        )

    def encoder_ids(self) -> dict[str, int]:
        """Encoder ids with stored vectors, and how many each has."""
        with self._lock:
            rows = self._connect().execute(
                "SELECT e.encoder_id, COUNT(v.digest) FROM encoders e "
                "LEFT JOIN vectors v ON v.eid = e.eid GROUP BY e.eid ORDER BY e.encoder_id"
            )
            return {eid: int(n) for eid, n in rows}

    def clear(self, encoder_id: str | None = None) -> int:
        """Delete the vectors of one encoder id (all when None); returns how many."""
        with self._lock:
            conn = self._connect()
            with _transaction(conn):
                if encoder_id is None:
                    n = conn.execute("DELETE FROM vectors").rowcount
                    conn.execute("DELETE FROM encoders")
                else:
                    row = conn.execute(
                        "SELECT eid FROM encoders WHERE encoder_id=?", (encoder_id,)
                    ).fetchone()
                    if row is None:
                        return 0
                    n = conn.execute("DELETE FROM vectors WHERE eid=?", (row[0],)).rowcount
                    conn.execute("DELETE FROM encoders WHERE eid=?", (row[0],))
            return int(n)

    # -- reading and writing ---------------------------------------------------------------
    def _encoder_row(self, encoder_id: str, dim: int | None) -> tuple[int, int] | None:
        """(eid, dim) of an encoder id; registers it when ``dim`` is given and it is new."""
        conn = self._connect()
        row = conn.execute(
            "SELECT eid, dim FROM encoders WHERE encoder_id=?", (encoder_id,)
        ).fetchone()
        if row is None and dim is not None:
            with _transaction(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO encoders (encoder_id, dim) VALUES (?, ?)",
                    (encoder_id, int(dim)),
                )
            row = conn.execute(
                "SELECT eid, dim FROM encoders WHERE encoder_id=?", (encoder_id,)
            ).fetchone()
        if row is not None and dim is not None and int(row[1]) != int(dim):
            raise EmbeddingCacheError(
                f"encoder id {encoder_id!r} is stored with dim {row[1]} but the encoder now "
                f"gives {dim}; its id does not capture a change of model. Clear it with "
                f"cache.clear({encoder_id!r})."
            )
        return None if row is None else (int(row[0]), int(row[1]))

    def _fetch(self, eid: int, dim: int, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Stored vectors that pass their checksum; the others count as misses (and are logged)."""
        import numpy as np

        conn = self._connect()
        found: dict[bytes, np.ndarray] = {}
        expected = dim * 4
        bad = 0
        for start in range(0, len(digests), _SQL_CHUNK):
            chunk = digests[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT digest, vector, checksum FROM vectors WHERE eid=? AND digest IN ({marks})",
                (eid, *chunk),
            )
            for digest, blob, checksum in rows:
                key = bytes(digest)
                if len(blob) == expected and checksum == _checksum(key, blob):
                    found[key] = np.frombuffer(blob, dtype="<f4")
                else:  # wrong size, no checksum (schema 1) or overwritten bytes: encode again
                    bad += 1
        if bad:
            self.repaired += bad
            logger.warning(
                "embedding cache %s: %d stored vectors failed their checksum; encoding them again",
                self.path,
                bad,
            )
        return found

    def _store(
        self, encoder_id: str, dim: int, digests: Sequence[bytes], vectors: np.ndarray
    ) -> None:
        import numpy as np

        data = np.ascontiguousarray(vectors, dtype="<f4")
        blobs = [data[i].tobytes() for i in range(len(digests))]
        rows = [(d, b, _checksum(bytes(d), b)) for d, b in zip(digests, blobs, strict=True)]

        def write(conn: sqlite3.Connection) -> None:
            row = self._encoder_row(encoder_id, dim)  # after a move aside the id is new
            assert row is not None
            with _transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO vectors (eid, digest, vector, checksum) "
                    "VALUES (?, ?, ?, ?)",
                    [(row[0], d, b, c) for d, b, c in rows],
                )

        self._guarded(write)

    def lookup(
        self,
        encoder_id: str,
        items: Any,
        *,
        digest: Callable[[Any], bytes] = content_digest,
    ) -> CacheLookup:
        """Read stored vectors for ``items`` without encoding anything (and without counting).

        ``digest`` turns an item into its key; pass the encoder's ``content_digest`` for
        image paths. Items never stored under ``encoder_id`` come back with ``found=False``.
        """
        import numpy as np

        items = as_item_list(items, what="EmbeddingCache.lookup")
        keys = [digest(item) for item in items]
        unique = list(dict.fromkeys(keys))

        def read(conn: sqlite3.Connection) -> tuple[int, dict[bytes, np.ndarray]] | None:
            row = self._encoder_row(encoder_id, None)
            return None if row is None else (row[1], self._fetch(row[0], row[1], unique))

        result = self._guarded(read)
        if result is None:
            return CacheLookup(
                vectors=np.full((len(items), 0), np.nan, dtype=np.float32),
                found=np.zeros(len(items), dtype=bool),
            )
        dim, stored = result
        vectors = np.full((len(items), dim), np.nan, dtype=np.float32)
        found = np.zeros(len(items), dtype=bool)
        for i, key in enumerate(keys):
            vec = stored.get(key)
            if vec is not None:
                vectors[i] = vec
                found[i] = True
        return CacheLookup(vectors=vectors, found=found)

    def encode(
        self,
        encoder: Encoder,
        items: Any,
        *,
        batch_size: int = 64,
        progress: bool | None = None,
        write_every: int = 4096,
    ) -> np.ndarray:
        """Encode ``items`` with ``encoder``, reading stored vectors and encoding only misses.

        Returns what ``encoder.encode(items)`` returns: float32 ``(n, encoder.dim)``. Misses
        are encoded ``write_every`` items at a time and each chunk is committed at once, so an
        interrupted run keeps its finished chunks. Identical items are encoded once.
        """
        import numpy as np

        if not _is_encoder(encoder):
            raise EmbeddingInputError(
                f"EmbeddingCache.encode needs an encoder (with id, dim and encode), got "
                f"{type(encoder).__name__}."
            )
        batch_size = check_batch_size(batch_size)
        if isinstance(write_every, bool) or not isinstance(write_every, int) or write_every < 1:
            raise EmbeddingInputError(
                f"write_every must be a positive integer, got {write_every!r}."
            )
        items = as_item_list(items, what="EmbeddingCache.encode")
        digest = getattr(encoder, "content_digest", content_digest)
        keys = [digest(item) for item in items]
        encoder_id = encoder.id
        unique = list(dict.fromkeys(keys))

        def read(conn: sqlite3.Connection) -> tuple[int, dict[bytes, np.ndarray]]:
            # a known id brings its width along: an all-hit run never asks the encoder (for
            # model encoders, asking would load the model)
            row = self._encoder_row(encoder_id, None)
            if row is None:
                row = self._encoder_row(encoder_id, int(encoder.dim))
            eid, dim = row  # type: ignore[misc]
            return dim, self._fetch(eid, dim, unique)

        dim, stored = self._guarded(read)
        out = np.empty((len(items), dim), dtype=np.float32)
        missing = [k for k in unique if k not in stored]
        if missing:
            first_item = {}
            for key, item in zip(keys, items, strict=True):
                first_item.setdefault(key, item)
            with progress_bar(
                total=len(missing),
                desc="encoding misses",
                enabled=show_progress(progress, len(missing)),
            ) as bar:
                for start in range(0, len(missing), write_every):
                    chunk = missing[start : start + write_every]
                    vectors = np.asarray(
                        encoder.encode(
                            [first_item[k] for k in chunk], batch_size=batch_size, progress=False
                        ),
                        dtype=np.float32,
                    )
                    if vectors.ndim == 2 and len(vectors) == len(chunk) and vectors.shape[1] != dim:
                        raise EmbeddingCacheError(
                            f"encoder id {encoder_id!r} is stored with dim {dim} but the "
                            f"encoder now gives {vectors.shape[1]}; its id does not capture a "
                            f"change of model. Clear it with cache.clear({encoder_id!r})."
                        )
                    if vectors.shape != (len(chunk), dim):
                        raise EmbeddingCacheError(
                            f"encoder {encoder_id!r} returned shape {vectors.shape} for "
                            f"{len(chunk)} items, expected {(len(chunk), dim)}."
                        )
                    self._store(encoder_id, dim, chunk, vectors)
                    stored.update(zip(chunk, vectors, strict=True))
                    bar.update(len(chunk))
        for i, key in enumerate(keys):
            out[i] = stored[key]
        missing_set = set(missing)
        hits = sum(1 for k in keys if k not in missing_set)
        self._hits += hits
        self._misses += len(keys) - hits
        logger.debug("cache %s: %d hits, %d misses", self.path, hits, len(keys) - hits)
        return out

    def wrap(self, encoder: Encoder) -> CachedEncoder:
        """An encoder with the same id and dim whose ``encode`` goes through this cache."""
        return CachedEncoder(encoder, self)


class CachedEncoder:
    """``encoder`` with its ``encode`` served from an :class:`EmbeddingCache`."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.encoder = encoder
        self.cache = cache

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, {self.cache!r})"

    @property
    def id(self) -> str:
        """The wrapped encoder's id."""
        return self.encoder.id

    @property
    def dim(self) -> int:
        """The wrapped encoder's dim."""
        return self.encoder.dim

    def content_digest(self, item: Any) -> bytes:
        """The wrapped encoder's content key."""
        return getattr(self.encoder, "content_digest", content_digest)(item)

    def encode(self, items: Any, *, batch_size: int = 64, progress: bool | None = None):
        """Encode through the cache (see :meth:`EmbeddingCache.encode`)."""
        return self.cache.encode(self.encoder, items, batch_size=batch_size, progress=progress)


def _is_encoder(obj: Any) -> bool:
    """Whether ``obj`` has ``id``, ``dim`` and ``encode`` (without running properties)."""
    import inspect

    for name in ("id", "dim", "encode"):
        try:
            inspect.getattr_static(obj, name)
        except AttributeError:
            return False
    return callable(getattr(obj, "encode", None))


def _checksum(digest: bytes, blob: bytes) -> bytes:
    """8 bytes of BLAKE2b over a vector's key and bytes."""
    return hashlib.blake2b(digest + blob, digest_size=8).digest()


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """True for a file SQLite cannot read (not a database, malformed), not for busy/locked."""
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _is_disk_full(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith("SQLITE_FULL") or "disk is full" in str(exc).lower()


def _disk_full_error(path: Path) -> EmbeddingCacheError:
    error = EmbeddingCacheError(
        f"no space left on {path.parent}: cannot write the embedding cache {str(path)!r}; "
        "free some space (or point embeddings.cache_path elsewhere) and run again."
    )
    error.errno = errno.ENOSPC
    return error


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
