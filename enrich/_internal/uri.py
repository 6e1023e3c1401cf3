"""Paths that may be URIs: local folders, ``file://``, ``s3://``, ``gs://``, ``az://``, ``abfs://``.

A :class:`Location` is one path of a job (a Delta table, the reports folder, a cache) with
the ``storage_options`` that reach it. Delta tables and Parquet are read and written by
delta-rs and polars, which take the options directly (:meth:`Location.delta_options`): they
are `object_store <https://docs.rs/object_store>`_ configuration keys such as
``aws_endpoint_url``, ``aws_access_key_id``, ``aws_region``, ``aws_allow_http``,
``google_service_account``, ``azure_storage_account_name``. Plain files (reports, the FAISS
index, cache shards) go through fsspec (:meth:`Location.fs`), which names the same things
differently; :func:`fsspec_options` translates. Credentials left out of the options come
from the environment as each library reads it (``AWS_ACCESS_KEY_ID``, ...); an option value
``"${NAME}"`` is read from the environment variable ``NAME`` when used, so a job file need
not hold secrets.

A local path stays a plain path (``str(Location.of("out/t")) == "out/t"``): local jobs
behave exactly as before. ``file:///x`` is the local path ``/x``.

>>> table = Location.of("s3://lake/enriched", {"aws_region": "eu-west-1"})
>>> str(table.with_name(f"{table.name}_runs")), (table / "part-0.parquet").name
('s3://lake/enriched_runs', 'part-0.parquet')
>>> table.is_remote, Location.of("file:///tmp/out").is_remote, str(Location.of("file:///tmp/out"))
(True, False, '/tmp/out')
>>> fsspec_options("s3://b", {"aws_endpoint_url": "http://127.0.0.1:9000", "aws_region": "x"})
{'endpoint_url': 'http://127.0.0.1:9000', 'client_kwargs': {'region_name': 'x'}}
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enrich.errors import InputError

__all__ = [
    "REMOTE_SCHEMES",
    "Location",
    "expand_options",
    "fsspec_filesystem",
    "fsspec_options",
    "is_remote",
    "join",
    "scheme_of",
]

REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "azure", "memory")
"""URI schemes of object stores (``memory://`` is fsspec's in-process store, for tests)."""

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_ENV = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_PACKAGES = {"s3": "s3fs", "gcs": "gcsfs", "abfs": "adlfs"}


def scheme_of(path: str | os.PathLike[str]) -> str:
    """The URI scheme of ``path`` in lower case; ``""`` for a plain local path.

    >>> scheme_of("S3://b/k"), scheme_of("/tmp/x"), scheme_of("file:///tmp/x")
    ('s3', '', 'file')
    """
    match = _SCHEME.match(os.fspath(path) if not isinstance(path, str) else path)
    return match.group(1).lower() if match else ""


def is_remote(path: Any) -> bool:
    """Whether ``path`` (a str, path or :class:`Location`) names an object store.

    >>> is_remote("s3://b/t"), is_remote("out/t"), is_remote("file:///out/t")
    (True, False, False)
    """
    if isinstance(path, Location):
        return path.is_remote
    text = str(path)
    scheme = scheme_of(text)
    if scheme in ("", "file", "local"):
        return False
    if scheme in REMOTE_SCHEMES:
        return True
    raise InputError(
        f"{text!r} uses the scheme {scheme!r}, which enrich cannot write to; use a local "
        f"path, file://, or one of {', '.join(s + '://' for s in REMOTE_SCHEMES[:-1])}"
    )


def join(root: str | os.PathLike[str], *parts: str) -> str:
    """``root`` joined with ``parts``: ``/`` for a URI, the OS separator for a local path.

    >>> join("s3://b/t/", "a", "b.parquet")
    's3://b/t/a/b.parquet'
    """
    text = str(root)
    if scheme_of(text):
        return "/".join([text.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(text, *parts)


def expand_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """The options with every ``"${NAME}"`` value read from the environment (keys lower case).

    Raises
    ------
    InputError
        A ``${NAME}`` value whose environment variable is not set.

    >>> os.environ["ENRICH_DOCTEST_KEY"] = "k1"
    >>> expand_options({"AWS_ACCESS_KEY_ID": "${ENRICH_DOCTEST_KEY}", "aws_region": "x"})
    {'aws_access_key_id': 'k1', 'aws_region': 'x'}
    """
    out: dict[str, str] = {}
    for key, value in (options or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        match = _ENV.match(text)
        if match:
            name = match.group(1)
            if name not in os.environ:
                raise InputError(
                    f"storage option {key!r} reads the environment variable {name}, which is "
                    f"not set; export {name}=... or give the value in the job file"
                )
            text = os.environ[name]
        out[str(key).lower()] = text
    return out


# object_store key (without its aws_/google_/azure_ prefix variants) -> fsspec keyword
_S3_KEYS = {
    "access_key_id": "key",
    "secret_access_key": "secret",
    "session_token": "token",
    "token": "token",
    "endpoint": "endpoint_url",
    "endpoint_url": "endpoint_url",
}
_GCS_KEYS = {
    "service_account": "token",
    "service_account_path": "token",
    "application_credentials": "token",
    "service_account_key": "token",
}
_AZURE_KEYS = {
    "storage_account_name": "account_name",
    "account_name": "account_name",
    "storage_account_key": "account_key",
    "account_key": "account_key",
    "access_key": "account_key",
    "storage_access_key": "account_key",
    "storage_sas_token": "sas_token",
    "sas_token": "sas_token",
    "sas_key": "sas_token",
    "storage_client_id": "client_id",
    "client_id": "client_id",
    "storage_client_secret": "client_secret",
    "client_secret": "client_secret",
    "storage_tenant_id": "tenant_id",
    "tenant_id": "tenant_id",
    "connection_string": "connection_string",
}
# object_store-only settings with no fsspec counterpart (fsspec infers them or has no such knob)
_NO_FSSPEC = ("allow_http", "conditional_put", "s3_locking_provider", "copy_if_not_exists")


def _protocol(scheme: str) -> str:
    if scheme in ("s3", "s3a"):
        return "s3"
    if scheme in ("gs", "gcs"):
        return "gcs"
    if scheme in ("az", "abfs", "abfss", "adl", "azure"):
        return "abfs"
    return scheme or "file"


def fsspec_options(uri: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Translate object_store ``storage_options`` to the keywords of ``uri``'s fsspec store.

    Keys already in fsspec's spelling (``key``, ``secret``, ``endpoint_url``, ``anon``...)
    pass through; settings only delta-rs needs (``aws_allow_http``, ``aws_conditional_put``)
    are dropped.
    """
    protocol = _protocol(scheme_of(uri))
    options = expand_options(storage_options)
    out: dict[str, Any] = {}
    client: dict[str, Any] = {}
    for key, value in options.items():
        bare = re.sub(r"^(aws|google|azure)_", "", key)
        if bare in _NO_FSSPEC or key in _NO_FSSPEC:
            continue
        if protocol == "s3":
            if bare in ("region", "default_region"):
                client["region_name"] = value
            elif bare == "skip_signature":
                out["anon"] = value.lower() == "true"
            elif bare == "virtual_hosted_style_request":
                style = "virtual" if value.lower() == "true" else "path"
                out.setdefault("config_kwargs", {})["s3"] = {"addressing_style": style}
            else:
                out[_S3_KEYS.get(bare, key)] = value
        elif protocol == "gcs":
            out[_GCS_KEYS.get(bare, key)] = value
        elif protocol == "abfs":
            out[_AZURE_KEYS.get(bare, key)] = value
        else:
            out[key] = value
    if client:
        out["client_kwargs"] = client
    return out


def fsspec_filesystem(uri: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """The fsspec filesystem that serves ``uri`` (options translated by :func:`fsspec_options`).

    Raises
    ------
    InputError
        The package fsspec needs for that scheme is not installed (named, with the pip line).
    """
    import fsspec

    protocol = _protocol(scheme_of(uri))
    options = fsspec_options(uri, storage_options)
    if protocol in ("s3", "gcs", "abfs"):
        # listings must be fresh: a nightly run looks for files other processes just wrote
        options.setdefault("use_listings_cache", False)
    try:
        return fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        package = _PACKAGES.get(protocol, protocol)
        raise InputError(
            f"reading {uri!r} needs the package {package!r} ({exc}); install it "
            f"(pip install {package}) or use a local path"
        ) from exc


def _freeze(options: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (options or {}).items()))


@dataclass(frozen=True)
class Location:
    """One file or folder of a job: a local path or an object-store URI, with its options.

    Build it with :meth:`of`. ``str()`` gives the path or URI as delta-rs, polars and fsspec
    take it; ``/``, :attr:`name`, :attr:`parent` and :meth:`with_name` work as on a path.
    The file operations (:meth:`exists`, :meth:`read_bytes`, :meth:`write_file`, ...) use
    the local file system or fsspec.
    """

    uri: str
    options: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls,
        path: str | os.PathLike[str] | Location,
        storage_options: Mapping[str, Any] | None = None,
    ) -> Location:
        """The location of ``path``; ``storage_options`` (object_store keys) for a URI.

        A :class:`Location` passes through (given options replace its own).
        """
        if isinstance(path, Location):
            if storage_options is None:
                return path
            return cls(path.uri, _freeze(storage_options))
        text = os.fspath(path)
        scheme = scheme_of(text)
        if scheme in ("file", "local"):
            text = text.split("://", 1)[1]
            if scheme == "file" and text.startswith("localhost/"):
                text = text[len("localhost") :]
        elif scheme:
            is_remote(text)  # refuses unknown schemes
            return cls(text.rstrip("/"), _freeze(storage_options))
        return cls(text, ())

    # -- naming --------------------------------------------------------------------------
    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Location):
            return self.uri == other.uri
        if isinstance(other, str | os.PathLike):
            try:
                return self.uri == Location.of(other).uri
            except InputError:  # a scheme enrich does not write to: not this location
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.uri)

    def __fspath__(self) -> str:
        if self.is_remote:
            raise TypeError(f"{self.uri!r} is an object-store URI, not a local path")
        return self.uri

    def __truediv__(self, name: str) -> Location:
        return Location(join(self.uri, str(name)), self.options)

    @property
    def is_remote(self) -> bool:
        """Whether this is an object-store URI (not a local path)."""
        return bool(scheme_of(self.uri))

    @property
    def storage_options(self) -> dict[str, str]:
        """The storage options as given (``${NAME}`` values not yet read)."""
        return dict(self.options)

    @property
    def name(self) -> str:
        """The last part of the path."""
        if self.is_remote:
            return posixpath.basename(self.uri.rstrip("/"))
        return Path(self.uri).name

    @property
    def parent(self) -> Location:
        """The folder holding this one."""
        if self.is_remote:
            scheme, rest = self.uri.split("://", 1)
            if "/" not in rest.strip("/"):
                raise InputError(
                    f"{self.uri!r} is a whole bucket (or container); name a folder in it, "
                    f"e.g. '{scheme}://{rest.strip('/')}/enriched'"
                )
            head = self.uri.rstrip("/").rsplit("/", 1)[0]
            return Location(head, self.options)
        return Location(str(Path(self.uri).parent), ())

    def with_name(self, name: str) -> Location:
        """A sibling: the same folder, another last part."""
        return self.parent / name

    @property
    def path(self) -> Path:
        """The local path (only for a local location).

        Raises
        ------
        InputError
            This is an object-store URI.
        """
        if self.is_remote:
            raise InputError(f"{self.uri!r} is an object-store URI, not a local path")
        return Path(self.uri)

    def delta_options(self) -> dict[str, str] | None:
        """``storage_options`` for delta-rs and polars (None for a local path)."""
        if not self.is_remote:
            return None
        return expand_options(self.storage_options) or None

    def fsspec_options(self) -> dict[str, Any] | None:
        """The storage options as fsspec keywords (None for a local path)."""
        if not self.is_remote:
            return None
        return fsspec_options(self.uri, self.storage_options)

    def fs(self) -> tuple[Any, str]:
        """``(fsspec filesystem, path within it)`` for this location."""
        if not self.is_remote:
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem(), str(Path(self.uri).absolute())
        fs = fsspec_filesystem(self.uri, self.storage_options)
        return fs, fs._strip_protocol(self.uri)

    # -- file operations -----------------------------------------------------------------
    def exists(self) -> bool:
        """Whether a file or folder is there (a URI prefix with objects under it counts)."""
        if not self.is_remote:
            return Path(self.uri).exists()
        fs, path = self.fs()
        return bool(fs.exists(path))

    def is_file(self) -> bool:
        """Whether a file (object) is there."""
        if not self.is_remote:
            return Path(self.uri).is_file()
        fs, path = self.fs()
        return bool(fs.isfile(path))

    def is_dir(self) -> bool:
        """Whether a folder (for a URI: a prefix with objects under it) is there."""
        if not self.is_remote:
            return Path(self.uri).is_dir()
        fs, path = self.fs()
        return bool(fs.isdir(path))

    def mkdir(self) -> None:
        """Create the folder and its parents (object stores have none: nothing to do)."""
        if not self.is_remote:
            Path(self.uri).mkdir(parents=True, exist_ok=True)

    def iterdir(self) -> Iterator[Location]:
        """The files and folders directly inside (none when it does not exist)."""
        if not self.is_remote:
            folder = Path(self.uri)
            if folder.is_dir():
                for child in folder.iterdir():
                    yield Location(str(child), ())
            return
        fs, path = self.fs()
        try:
            names = fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return
        for name in names:
            child = posixpath.basename(str(name).rstrip("/"))
            if child:
                yield self / child

    def glob(self, pattern: str) -> Iterator[Location]:
        """The files and folders directly inside whose name matches ``pattern`` (fnmatch)."""
        import fnmatch

        for child in self.iterdir():
            if fnmatch.fnmatchcase(child.name, pattern):
                yield child

    def read_bytes(self) -> bytes:
        """The file's bytes."""
        if not self.is_remote:
            return Path(self.uri).read_bytes()
        fs, path = self.fs()
        return bytes(fs.cat_file(path))

    def read_text(self, encoding: str = "utf-8") -> str:
        """The file's text."""
        return self.read_bytes().decode(encoding)

    def unlink(self, missing_ok: bool = True) -> None:
        """Delete the file (nothing when it is not there, unless ``missing_ok`` is False)."""
        if not self.is_remote:
            Path(self.uri).unlink(missing_ok=missing_ok)
            return
        fs, path = self.fs()
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)

    def rmtree(self) -> None:
        """Delete the folder and everything in it (nothing when it is not there)."""
        if not self.is_remote:
            shutil.rmtree(self.uri, ignore_errors=True)
            return
        fs, path = self.fs()
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=True)

    def rename(self, target: Location) -> None:
        """Move this file or folder to ``target`` (on an object store: copy, then delete)."""
        if not self.is_remote and not target.is_remote:
            Path(target.uri).parent.mkdir(parents=True, exist_ok=True)
            Path(self.uri).rename(target.uri)
            return
        fs, path = self.fs()
        _, dest = target.fs()
        fs.mv(path, dest, recursive=True)

    def write_file(self, write: Callable[[Path], object]) -> Location:
        """Call ``write(local_file)``, then publish the file here whole, never half.

        Locally the file is written beside this path and renamed onto it (atomic on one
        file system). On an object store it is written to a local temporary file and
        uploaded with one PUT, which makes the object visible whole or not at all.
        Returns this location.
        """
        if not self.is_remote:
            from enrich._internal.files import write_atomic

            write_atomic(self.uri, write)
            return self
        with tempfile.TemporaryDirectory(prefix="enrich-upload-") as tmp:
            local = Path(tmp) / self.name
            write(local)
            fs, path = self.fs()
            fs.put_file(str(local), path)
        return self

    def write_bytes(self, data: bytes) -> Location:
        """Write ``data`` to the file whole (see :meth:`write_file`)."""
        return self.write_file(lambda partial: partial.write_bytes(data))

    def write_text(self, text: str, encoding: str = "utf-8") -> Location:
        """Write ``text`` to the file whole (see :meth:`write_file`)."""
        return self.write_bytes(text.encode(encoding))

    def upload_folder(self, write: Callable[[Path], object]) -> Location:
        """Call ``write(local_folder)``, then copy the folder here (its files one by one).

        For a local location ``write`` gets this very folder.
        """
        if not self.is_remote:
            write(Path(self.uri))
            return self
        with tempfile.TemporaryDirectory(prefix="enrich-upload-") as tmp:
            local = Path(tmp) / self.name
            write(local)
            fs, path = self.fs()
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                fs.put_file(str(file), f"{path}/{file.relative_to(local).as_posix()}")
        return self

    def download_folder(self, into: Path) -> Path:
        """Copy the folder's files to the local folder ``into`` (a local folder: itself)."""
        if not self.is_remote:
            return Path(self.uri)
        fs, path = self.fs()
        into.mkdir(parents=True, exist_ok=True)
        for name in fs.find(path):
            relative = str(name)[len(path) :].lstrip("/")
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(name, str(target))
        return into
