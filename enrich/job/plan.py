"""Which source columns a run reads and hashes, how the content hash is made, which LFs rerun.

Pure functions over the inspected source files and the LFs: :func:`plan_columns` merges the
files' column types into one :class:`ColumnPlan` (refusing type clashes and clashes with the
enriched table's own columns); :func:`content_hash` hashes the planned columns of each row;
:func:`schema_changes` compares the plan with the one a previous run recorded;
:func:`lfs_to_rerun` says which LFs vote again on every asset.

>>> from enrich.job.sources import SourceFile
>>> files = [SourceFile("a.csv", "csv", [10, 1], {"id": pl.Int64, "text": pl.String})]
>>> plan = plan_columns(files, [], id_column="id", slice_columns=(), gold_column=None)
>>> plan.read, plan.hash_columns
(('id',), ())
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from enrich.errors import InputError, MissingColumnError, SourceSchemaError
from enrich.job.sources import SourceFile
from labeling_functions.core import is_stable_version

__all__ = [
    "EXTRA_COLUMNS",
    "HASH_SEED",
    "LINEAGE_COLUMNS",
    "RESERVED",
    "ColumnPlan",
    "check_lf_names",
    "content_hash",
    "lfs_to_rerun",
    "plan_columns",
    "schema_changes",
    "unstable_lf_warnings",
]

logger = logging.getLogger(__name__)

HASH_SEED = 0x656E72696368
"""Seed of the content hash (recorded in each run's ``hash_scheme``)."""
LINEAGE_COLUMNS = ("run_id", "model_version", "lf_versions", "created_at")
"""Columns of the enriched table that say which run wrote a row."""
EXTRA_COLUMNS = ("content_hash", "source_file", "gold")
"""State columns the job keeps in the table beside the labels."""
RESERVED = {
    "asset_id",
    "label",
    "label_name",
    "confidence",
    "entropy",
    "n_votes",
    "conflict",
    "all_abstain",
    "needs_review",
    *LINEAGE_COLUMNS,
    *EXTRA_COLUMNS,
    "index_id",
}
"""Names of enriched-table columns a source slice column may not take."""


@dataclass(frozen=True)
class ColumnPlan:
    """Which source columns the job reads, hashes and keeps, with their types."""

    id_column: str
    read: tuple[str, ...]
    hash_columns: tuple[str, ...]
    slices: tuple[str, ...]
    gold_column: str | None
    dtypes: Mapping[str, pl.DataType]

    def hash_scheme(self) -> dict[str, Any]:
        """What the content hash covers and how it is computed (a change rehashes all)."""
        return {
            "columns": {c: str(self.dtypes[c]) for c in self.hash_columns},
            "algorithm": f"polars {pl.__version__} hash_rows",
            "seed": HASH_SEED,
        }

    def schema_record(self) -> dict[str, str]:
        """The type of each read column, as the run record stores it."""
        return {c: str(self.dtypes[c]) for c in self.read}


def plan_columns(
    files: Sequence[SourceFile],
    lfs: Sequence[Any],
    *,
    id_column: str,
    slice_columns: Sequence[str],
    gold_column: str | None,
    embedding_input: str | None = None,
    embedding_output: str | None = None,
) -> ColumnPlan:
    """The columns to read and hash: the id, what the LFs read, slices, gold, embedding input.

    Parameters
    ----------
    files
        The inspected source files (their column types).
    lfs
        The job's LFs (``columns``; a row-wise LF with ``columns_read = None`` reads all).
    id_column, slice_columns, gold_column
        ``source.id_column``, ``source.slice_columns``, ``gold.column``.
    embedding_input, embedding_output
        The column the job embeds, and the column its vectors are given to LFs as (LFs may
        read the latter although no source has it).

    Returns
    -------
    ColumnPlan

    Raises
    ------
    SourceSchemaError
        Two files give a column different types (names both files).
    MissingColumnError
        An LF reads a column no source has (lists the available ones).
    InputError
        A slice column clashes with a column of the enriched table, or the source has an
        ``asset_id`` column that is not the id column.
    """
    dtypes: dict[str, pl.DataType] = {}
    origin: dict[str, str] = {}
    for file in files:
        for name, dtype in file.schema.items():
            if name in dtypes and dtypes[name] != dtype:
                raise SourceSchemaError(
                    f"source column {name!r} is {dtypes[name]} in {origin[name]!r} but {dtype} "
                    f"in {file.path!r}; make the files agree (cast the column) before the run"
                )
            dtypes.setdefault(name, dtype)
            origin.setdefault(name, file.path)
    available = list(dtypes)
    lf_columns: set[str] = set()
    for lf in lfs:
        read = getattr(lf, "columns_read", ()) if hasattr(lf, "columns_read") else lf.columns
        if read is None:  # a row-wise LF that may read anything
            lf_columns.update(available)
        else:
            lf_columns.update(lf.columns)
    missing = sorted(c for c in lf_columns if c not in dtypes and c != embedding_output)
    if missing and files:
        users = [lf.name for lf in lfs if set(lf.columns) & set(missing)]
        raise MissingColumnError(
            f"LF(s) {users} read column(s) {missing} that the source lacks; the source has "
            f"columns {available}"
        )
    for name in slice_columns:
        if name in RESERVED or name.startswith(("vote_", "proba_")):
            raise InputError(
                f"source.slice_columns: {name!r} clashes with a column of the enriched table; "
                "rename it in the source"
            )
    if id_column != "asset_id" and "asset_id" in dtypes:
        raise InputError(
            f"the source has a column 'asset_id' but source.id_column is {id_column!r}; "
            "set source.id_column = 'asset_id' or rename that column"
        )
    inputs = {c for c in (embedding_input,) if c}
    keep = set(slice_columns) | ({gold_column} if gold_column else set())
    hashed = (lf_columns & set(dtypes)) | inputs | keep
    hashed.discard(id_column)
    read = [id_column, *sorted(hashed)]
    return ColumnPlan(
        id_column=id_column,
        read=tuple(read),
        hash_columns=tuple(sorted(hashed)),
        slices=tuple(slice_columns),
        gold_column=gold_column,
        dtypes={c: dtypes[c] for c in read if c in dtypes},
    )


def check_lf_names(lfs: Sequence[Any]) -> None:
    """Raise :class:`InputError` when two LFs share a name (their vote columns would clash)."""
    names = [lf.name for lf in lfs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"LF names must be unique across labeling_functions.sources; repeated: {repeated}"
        )


def content_hash(data: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Each row's hash of ``columns`` (Int64 ``content_hash``; 0 when nothing is hashed)."""
    if not columns or data.height == 0:
        return pl.Series("content_hash", [0] * data.height, dtype=pl.Int64)
    hashed = data.select(columns).hash_rows(seed=HASH_SEED)
    return hashed.reinterpret(signed=True).alias("content_hash")


def schema_changes(record: Mapping[str, Any], plan: ColumnPlan) -> list[str]:
    """Warnings for read columns whose type changed since the run of ``record``.

    Raises
    ------
    SourceSchemaError
        The id column's type changed (the table is keyed by it).
    """
    before: Mapping[str, str] = record.get("source", {}).get("schema", {})
    changes = []
    for name, dtype in plan.schema_record().items():
        if name in before and before[name] != dtype:
            if name == plan.id_column:
                raise SourceSchemaError(
                    f"source column {name!r} (the asset id) was {before[name]} in run "
                    f"{record.get('run_id')} and is {dtype} now; cast it back, or write to a "
                    "new output.path"
                )
            changes.append(
                f"source schema changed since run {record.get('run_id')}: column {name!r} "
                f"{before[name]} -> {dtype}; its assets are treated as changed"
            )
    for warning in changes:
        logger.warning(warning)
    return changes


def lfs_to_rerun(
    lfs: Sequence[Any],
    prev_versions: Mapping[str, str],
    *,
    classes_changed: bool,
    rerun: frozenset[str] = frozenset(),
) -> tuple[list[Any], dict[str, tuple[str, ...]]]:
    """Return the LFs that vote again on every asset, and why some always do.

    An LF votes again on every asset when the classes changed, its version differs from the
    one the previous run recorded (or it is new), it was asked for (``rerun``), or its version
    cannot cover what it depends on (its ``version_notes`` say what): such an LF reruns every
    run.

    Parameters
    ----------
    lfs
        The job's labeling functions.
    prev_versions
        LF name -> version recorded by the previous run (empty on a first run).
    classes_changed
        Whether the job's classes differ from the previous run's.
    rerun
        Names of LFs to rerun whatever their version.

    Returns
    -------
    tuple
        ``(changed, unstable)``: the LFs to rerun, in job order, and the notes of each LF
        whose version is not stable, by name.

    Examples
    --------
    >>> from labeling_functions import keyword_lf
    >>> lfs = [keyword_lf("sub", ["subscribe"], label=1), keyword_lf("free", ["free"], label=1)]
    >>> before = {"sub": lfs[0].version}
    >>> changed, unstable = lfs_to_rerun(lfs, before, classes_changed=False)
    >>> [lf.name for lf in changed], unstable
    (['free'], {})
    """
    versions = {lf.name: lf.version for lf in lfs}
    unstable = {lf.name: lf.version_notes for lf in lfs if not is_stable_version(versions[lf.name])}
    changed = [
        lf
        for lf in lfs
        if classes_changed
        or prev_versions.get(lf.name) != versions[lf.name]
        or lf.name in unstable
        or lf.name in rerun
    ]
    return changed, unstable


def unstable_lf_warnings(unstable: Mapping[str, Sequence[str]]) -> list[str]:
    """Return the run warning for each LF that reruns every run, from :func:`lfs_to_rerun`.

    Examples
    --------
    >>> print(unstable_lf_warnings({"lookup": ("its global table",)})[0])
    LF 'lookup' is re-run on every asset each run: its version cannot cover its global table
    """
    return [
        f"LF {name!r} is re-run on every asset each run: its version cannot cover "
        f"{'; '.join(notes)}"
        for name, notes in unstable.items()
    ]
