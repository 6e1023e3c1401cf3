"""Incremental state: the previous table, which assets changed, every asset after this run.

All of a job's state lives in its output table (content hash, source file, votes, previous
outputs), so it advances with the same single commit as the labels. :func:`load_previous`
reads it; :func:`asset_status` compares what was read with it; :func:`assemble` joins the
new votes, the kept votes and the unread assets into one frame sorted by asset id;
:func:`compare_previous` and :func:`rewrite_mask` decide which rows an incremental run
rewrites.

>>> data = pl.DataFrame({"asset_id": [1, 2], "content_hash": [7, 8], "source_file": ["a", "a"]})
>>> state = pl.DataFrame({"asset_id": [1], "content_hash": [0], "source_file": ["a"]})
>>> asset_status(data, state, set()).rows()
[(1, False, True, False), (2, True, False, False)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from enrich._internal.uri import Location
from enrich.errors import InputError, SourceSchemaError
from enrich.io.store import latest_run, read_table, table_columns, table_version
from enrich.job.plan import LINEAGE_COLUMNS, ColumnPlan
from enrich.votes import VoteMatrix

__all__ = [
    "DERIVED_COLUMNS",
    "STATE_FORMAT",
    "Previous",
    "assemble",
    "asset_status",
    "compare_previous",
    "empty_state",
    "load_previous",
    "model_rewrite_mask",
    "rewrite_mask",
    "rows_of",
]

STATE_FORMAT = 1
"""Version of the state a run keeps in its table and record (another one is refused)."""
# Columns of the table the next run recomputes and never reads back.
DERIVED_COLUMNS = ("label_name", "confidence", "entropy", "n_votes", "conflict", "all_abstain")


@dataclass(frozen=True)
class Previous:
    """The last committed run: its table version, run record and state columns."""

    version: int
    record: dict[str, Any]
    state: pl.DataFrame


def load_previous(
    table: str | Path | Location, *, id_column: str, id_dtype: pl.DataType | None
) -> Previous | None:
    """The state the last run left in ``table``; None when there is no table yet.

    Parameters
    ----------
    table
        The output Delta table (a local path, or a location on an object store).
    id_column, id_dtype
        The source's id column and its type (None when no source file has it yet).

    Raises
    ------
    InputError
        The table was not written by enrich, or by another state format.
    SourceSchemaError
        The source's ids have another type than the table's.
    """
    version = table_version(table)
    if version is None:
        return None
    latest = latest_run(table)
    if latest is None:
        raise InputError(
            f"output.path {str(table)!r} is a Delta table that enrich did not write (no run "
            "record in its history); choose a new output.path"
        )
    record = latest[1]
    if record.get("state_format") != STATE_FORMAT:
        raise InputError(
            f"the table {str(table)!r} was written by another enrich state format "
            f"({record.get('state_format')!r}, this is {STATE_FORMAT}); write to a new output.path"
        )
    columns = [
        c for c in table_columns(table) if c not in LINEAGE_COLUMNS and c not in DERIVED_COLUMNS
    ]
    state = read_table(table, version=version, columns=columns)
    state_id = state.schema["asset_id"]
    if id_dtype not in (None, state_id):
        raise SourceSchemaError(
            f"asset ids are {state_id} in the output table but the source column "
            f"{id_column!r} is {id_dtype}; cast it to {state_id}, or "
            "write to a new output.path"
        )
    return Previous(version=version, record=record, state=state)


def empty_state(data: pl.DataFrame) -> pl.DataFrame:
    """The state before the first run: no asset (ids typed like ``data``'s)."""
    return pl.DataFrame(
        schema={
            "asset_id": data.schema["asset_id"],
            "content_hash": pl.Int64,
            "source_file": pl.String,
        }
    )


def asset_status(
    data: pl.DataFrame, state: pl.DataFrame, unread: set[str], *, all_changed: bool = False
) -> pl.DataFrame:
    """Per asset read: ``_new``, ``_changed``, ``_moved``; refuse cross-file copies.

    ``_changed``: the content hash differs; ``_moved``: the asset is read from another file
    than the table records.

    A moved asset's row must be rewritten even when nothing else about it changed, so the
    table records the file it is in now: an asset recorded in its old file would later look
    like a copy of itself in that file.

    ``all_changed``: the hash covers other columns or types than last time, so every known
    asset counts as changed.
    """
    prev = rows_of(state, data.get_column("asset_id")).select(
        "asset_id",
        pl.col("content_hash").alias("_prev_hash"),
        pl.col("source_file").alias("_prev_file"),
    )
    joined = data.select("asset_id", "content_hash", "source_file").join(
        prev, on="asset_id", how="left", maintain_order="left"
    )
    copies = joined.filter(
        pl.col("_prev_file").is_not_null()
        & (pl.col("_prev_file") != pl.col("source_file"))
        & pl.col("_prev_file").is_in(list(unread))
    )
    if copies.height:
        sample = copies.head(3).select("asset_id", "source_file", "_prev_file").rows()
        raise InputError(
            f"{copies.height:,} asset id(s) appear in a new or changed file and also in an "
            f"unchanged one, e.g. (id, new file, earlier file) {sample}; each asset must "
            "appear once in the source (remove the copies)"
        )
    differs = pl.lit(True) if all_changed else pl.col("_prev_hash") != pl.col("content_hash")
    return joined.select(
        "asset_id",
        pl.col("_prev_hash").is_null().alias("_new"),
        (pl.col("_prev_hash").is_not_null() & differs).alias("_changed"),
        pl.col("_prev_file")
        .ne_missing(pl.col("source_file"))
        .and_(pl.col("_prev_hash").is_not_null())
        .alias("_moved"),
    )


def assemble(
    state: pl.DataFrame,
    *,
    data: pl.DataFrame,
    fresh_rows: pl.DataFrame,
    fresh_votes: VoteMatrix,
    revote_rows: pl.DataFrame,
    revotes: VoteMatrix | None,
    lf_names: Sequence[str],
    lfs_changed: bool,
    plan: ColumnPlan,
) -> tuple[pl.DataFrame, int]:
    """Every asset's state after this run, sorted by asset id; and how many kept stale votes.

    Parameters
    ----------
    state
        The previous table's state columns (:attr:`Previous.state`, or :func:`empty_state`).
    data
        Every row read this run (planned columns, ``content_hash``, ``source_file``, and
        ``gold`` / ``index_id`` when the run has them).
    fresh_rows, fresh_votes
        The new and changed assets and all LFs' votes on them.
    revote_rows, revotes
        The unchanged assets read this run and the changed LFs' votes on them (None when no
        LF changed).
    lf_names
        Every LF of this run, in vote-column order.
    lfs_changed
        Whether any LF is new or changed: assets not read this run keep stale votes.
    plan
        The run's column plan (slices, gold, column types).

    Returns
    -------
    (pl.DataFrame, int)
        One row per asset (votes as ``vote_<lf>`` Int32, -1 = abstain; the previous outputs
        as ``_prev_<column>``; ``_stale``) and the number of assets with stale votes.
    """
    vote_cols = [f"vote_{name}" for name in lf_names]
    keep_cols = ["asset_id", "content_hash", "source_file", *plan.slices]
    if plan.gold_column:
        keep_cols.append("gold")
    with_index = "index_id" in data.columns
    if with_index:
        keep_cols.append("index_id")

    def from_source(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(keep_cols)

    previous = previous_outputs(state)
    # fresh assets: everything from the source and the new votes (and, for changed ones,
    # the previous outputs)
    fresh = from_source(fresh_rows).with_columns(
        pl.Series(f"vote_{name}", fresh_votes.votes[:, j], dtype=pl.Int32)
        for j, name in enumerate(fresh_votes.lf_names)
    )
    if previous:
        fresh = fresh.join(
            rows_of(state, fresh.get_column("asset_id")).select("asset_id", *previous),
            on="asset_id",
            how="left",
            maintain_order="left",
        )
    # unchanged assets read this run: source values, old votes, re-run LFs replaced
    read_kept = from_source(revote_rows)
    old_votes = [c for c in vote_cols if c in state.columns]
    read_kept = read_kept.join(
        rows_of(state, read_kept.get_column("asset_id")).select("asset_id", *old_votes, *previous),
        on="asset_id",
        how="left",
        maintain_order="left",
    )
    if revotes is not None:
        read_kept = read_kept.with_columns(
            pl.Series(f"vote_{name}", revotes.votes[:, j], dtype=pl.Int32)
            for j, name in enumerate(revotes.lf_names)
        )
    # assets not read this run (unchanged files, or gone from the source): all from the table
    read_ids = data.get_column("asset_id").implode()
    unread = state.filter(~pl.col("asset_id").is_in(read_ids)).with_columns(previous)
    stale = unread.height if lfs_changed else 0
    schema = {
        "asset_id": data.schema["asset_id"],
        "content_hash": pl.Int64,
        "source_file": pl.String,
        **{c: plan.dtypes[c] for c in plan.slices},
        **({"gold": pl.Int32} if plan.gold_column else {}),
        **({"index_id": pl.Int64} if with_index else {}),
        **{c: pl.Int32 for c in vote_cols},
        **{e.meta.output_name(): state.schema[e.meta.root_names()[0]] for e in previous},
    }
    parts = [align(part, schema) for part in (fresh, read_kept, unread)]
    marks = [False, False, lfs_changed]
    parts = [p.with_columns(pl.lit(m).alias("_stale")) for p, m in zip(parts, marks, strict=True)]
    full = pl.concat(parts, how="vertical").sort("asset_id")
    fills = [pl.col(vote_cols).fill_null(-1)] if vote_cols else []
    if plan.gold_column:
        fills.append(pl.col("gold").fill_null(-1))
    return (full.with_columns(fills) if fills else full), stale


def rows_of(state: pl.DataFrame, ids: pl.Series) -> pl.DataFrame:
    """The rows of ``state`` for ``ids``.

    A few new ids are looked up in a hash set of them, rather than a hash table built over
    the whole state by a join.
    """
    return state.filter(pl.col("asset_id").is_in(ids.implode()))


def previous_outputs(state: pl.DataFrame) -> list[pl.Expr]:
    """The previous run's label, review flag and probabilities, as ``_prev_<column>``.

    With an end model also its ``model_label`` and ``model_proba_<class>``.

    :func:`compare_previous` checks this run's output against them (null for fresh assets).
    """
    kept = [
        c
        for c in state.columns
        if c in ("label", "needs_review", "model_label") or c.startswith(("proba_", "model_proba_"))
    ]
    return [pl.col(c).alias(f"_prev_{c}") for c in kept]


def align(part: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return part.select(
        part.get_column(c).cast(t) if c in part.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in schema.items()
    )


def compare_previous(
    enriched: pl.DataFrame, full: pl.DataFrame, classes: Sequence[str]
) -> pl.DataFrame:
    """Per enriched row: the previous label and review flag, and how far a probability moved.

    All null for assets new to the table. ``full`` (row-aligned with ``enriched``) carries
    the previous outputs as ``_prev_<column>`` (see :func:`previous_outputs`).
    """
    proba_cols = [f"proba_{c}" for c in classes]
    wanted = [f"_prev_{c}" for c in ("label", "needs_review", *proba_cols)]
    if not set(wanted) <= set(full.columns):
        return pl.DataFrame(
            {
                "_prev_label": pl.Series([None] * enriched.height, dtype=pl.Int64),
                "_prev_review": pl.Series([None] * enriched.height, dtype=pl.Boolean),
                "_moved": pl.Series([None] * enriched.height, dtype=pl.Float64),
            }
        )
    joined = pl.concat([enriched.select(proba_cols), full.select(wanted)], how="horizontal")
    moved = pl.max_horizontal([(pl.col(c) - pl.col(f"_prev_{c}")).abs() for c in proba_cols])
    return joined.select(
        pl.col("_prev_label").cast(pl.Int64),
        pl.col("_prev_needs_review").alias("_prev_review"),
        moved.alias("_moved"),
    )


def rewrite_mask(
    enriched: pl.DataFrame,
    compared: pl.DataFrame,
    status: pl.DataFrame,
    tolerance: float,
) -> pl.Series:
    """Rows to write: new, changed or moved assets, flipped labels or flags, moved probabilities.

    A label that becomes null (no LF votes any more) or stops being null counts as flipped.
    """
    moved_file = pl.col("_moved") if "_moved" in status.columns else pl.lit(False)
    touched = status.filter(pl.col("_new") | pl.col("_changed") | moved_file).get_column("asset_id")
    frame = pl.concat(
        [enriched.select("asset_id", "label", "needs_review"), compared], how="horizontal"
    )
    moved = pl.col("_moved")
    mask = frame.select(
        (
            pl.col("asset_id").is_in(touched.implode())
            # new to the table (the review flag is never null for a row in it; the label is
            # null where no LF voted)
            | pl.col("_prev_review").is_null()
            | pl.col("label").cast(pl.Int64).ne_missing(pl.col("_prev_label"))
            | (pl.col("needs_review") != pl.col("_prev_review"))
            | ((moved > tolerance) if tolerance > 0 else (moved > 0))
        ).alias("_write")
    )
    return mask.get_column("_write").fill_null(True)


def model_rewrite_mask(
    enriched: pl.DataFrame, full: pl.DataFrame, classes: Sequence[str], tolerance: float
) -> pl.Series:
    """Rows whose end-model label flipped or whose model probabilities moved past ``tolerance``.

    ``full`` carries the previous run's ``_prev_model_*`` columns (all True without them).

    >>> enriched = pl.DataFrame({"model_label": [0, 1], "model_proba_A": [0.9, 0.4],
    ...                          "model_proba_B": [0.1, 0.6]})
    >>> full = pl.DataFrame({"_prev_model_label": [0, 0], "_prev_model_proba_A": [0.9, 0.6],
    ...                      "_prev_model_proba_B": [0.1, 0.4]})
    >>> model_rewrite_mask(enriched, full, ["A", "B"], 0.005).to_list()
    [False, True]
    """
    cols = [f"model_proba_{c}" for c in classes]
    wanted = ["_prev_model_label", *(f"_prev_{c}" for c in cols)]
    if not set(wanted) <= set(full.columns):
        return pl.Series("_write", [True] * enriched.height, dtype=pl.Boolean)
    frame = pl.concat(
        [enriched.select("model_label", *cols), full.select(wanted)], how="horizontal"
    )
    moved = pl.max_horizontal([(pl.col(c) - pl.col(f"_prev_{c}")).abs() for c in cols])
    return frame.select(
        (
            pl.col("model_label")
            .cast(pl.Int64)
            .ne_missing(pl.col("_prev_model_label").cast(pl.Int64))
            | ((moved > tolerance) if tolerance > 0 else (moved > 0))
        )
        .fill_null(True)
        .alias("_write")
    ).get_column("_write")
