"""What each partition does in a partitioned run: read, load its stored rows, or stay as it is.

One partition per source file. :func:`plan_tasks` turns the source files and the previous
run's partition state (:func:`usable_partitions`) into the tasks the workers vote (a file
that is new or changed, a partition to re-read, rows of a source gone from the source) and
the partitions left unchanged; :func:`index_starts` gives each voted partition its block of
index ids; :func:`partitions_to_rewrite` says which unchanged partitions the refitted model
moves. A partition is one file (a Delta source is one partition): row groups of a big file
are not split yet. Ids are checked for copies within each file only: an asset id that moves
to another file, or appears in two, is not caught on this path (the local engine refuses
such copies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from enrich._internal.uri import Location, expand_options, is_remote
from enrich.io.store import delta_table
from enrich.job.config import JobConfig
from enrich.job.context import RunContext
from enrich.job.index import Embedder
from enrich.job.worker import EmbedSettings, PartitionTask

__all__ = [
    "embed_settings",
    "gone_sources",
    "index_starts",
    "partitions_to_rewrite",
    "plan_tasks",
    "source_storage_options",
    "stored_tasks",
    "usable_partitions",
]


def plan_tasks(
    files: Sequence[Any],
    kept: Mapping[str, Mapping[str, Any]] | None,
    *,
    full_read: bool,
    has_table: bool,
    gone: Sequence[str] = (),
) -> tuple[list[PartitionTask], dict[str, dict[str, Any]]]:
    """The partitions to read this run, and the unchanged ones (their kept state).

    Parameters
    ----------
    files
        The source files (:class:`~enrich.job.sources.SourceFile`), one partition each.
    kept
        The previous run's partition state (None: none usable).
    full_read
        Read every file (first run, changed LFs or hash scheme, reviewed gold).
    has_table
        Whether the table exists (its rows are then looked up per partition).
    gone
        Sources the table holds rows for that are no longer in the source (their rows are
        read from the table, and kept).

    Returns
    -------
    (list of PartitionTask, dict)

    Examples
    --------
    >>> from enrich.job.sources import SourceFile
    >>> files = [SourceFile("a.parquet", "parquet", [1, 2], {}),
    ...          SourceFile("b.parquet", "parquet", [3, 4], {})]
    >>> kept = {"a.parquet": {"index": 0, "fingerprint": [1, 2], "files": ["p0"]}}
    >>> tasks, unchanged = plan_tasks(files, kept, full_read=False, has_table=True)
    >>> [t.key for t in tasks], list(unchanged)
    (['b.parquet'], ['a.parquet'])
    """
    kept = dict(kept or {})
    has_state = bool(kept)
    used = {int(e["index"]) for e in kept.values()}
    counter = iter(i for i in range(len(used) + len(files) + len(gone) + 1) if i not in used)
    tasks: list[PartitionTask] = []
    unchanged: dict[str, dict[str, Any]] = {}
    for file in files:
        entry = kept.pop(file.path, None)
        if (
            entry is not None
            and not full_read
            and list(entry["fingerprint"]) == list(file.fingerprint)
        ):
            unchanged[file.path] = dict(entry)
            continue
        index = int(entry["index"]) if entry is not None else next(counter)
        tasks.append(
            PartitionTask(
                key=file.path,
                index=index,
                source=file,
                previous_files=tuple(entry["files"]) if entry is not None else (),
                previous_by_filter=has_table and entry is None and not has_state,
                previous_vectors=entry.get("vectors") if entry is not None else None,
            )
        )
    for key, entry in kept.items():  # gone from the source: the table keeps their rows
        if full_read:
            tasks.append(
                PartitionTask(
                    key=key,
                    index=int(entry["index"]),
                    source=None,
                    previous_files=tuple(entry["files"]),
                    previous_vectors=entry.get("vectors"),
                )
            )
        else:
            unchanged[key] = dict(entry)
    for key in gone:
        tasks.append(
            PartitionTask(key=key, index=next(counter), source=None, previous_by_filter=True)
        )
    return tasks, unchanged


def index_starts(
    tasks: Sequence[PartitionTask],
    infos: Sequence[Mapping[str, Any]],
    unchanged: Any,
) -> dict[str, int]:
    """The first index id of each voted partition's new assets: one block per partition.

    Blocks follow the partitions' order (their index), after the largest id any partition
    holds, so every asset keeps a distinct id without the driver seeing the assets.

    >>> tasks = [PartitionTask("b", 1, None), PartitionTask("a", 0, None)]
    >>> infos = [{"n_unindexed": 2, "max_index_id": -1}, {"n_unindexed": 3, "max_index_id": 4}]
    >>> index_starts(tasks, infos, [{"max_index_id": 9}])
    {'a': 10, 'b': 13}
    """
    top = max(
        [-1]
        + [int(i.get("max_index_id", -1)) for i in infos]
        + [int(e.get("max_index_id", -1)) for e in unchanged]
    )
    starts, cursor = {}, top + 1
    for task, info in sorted(zip(tasks, infos, strict=True), key=lambda pair: pair[0].index):
        starts[task.key] = cursor
        cursor += int(info.get("n_unindexed", 0))
    return starts


def usable_partitions(
    table: Location, version: int | None, record: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The previous run's partition state, if every file it names is still in the table."""
    if record is None or version is None:
        return None
    parts = record.get("partitions")
    if not parts:
        return None
    actions = delta_table(table, version=version).get_add_actions(flatten=True)
    files = {str(p) for p in actions.column("path").to_pylist()}
    named = {f for entry in parts.values() for f in entry["files"]}
    return dict(parts) if named <= files else None


def gone_sources(
    table: Location, version: int | None, files: Sequence[Any], kept: Mapping[str, Any] | None
) -> list[str]:
    """Sources the table holds rows for but the source no longer has (no partition state)."""
    if version is None or kept is not None:
        return []
    present = {f.path for f in files}
    held = (
        pl.scan_delta(str(table), version=version, storage_options=table.delta_options())
        .select("source_file")
        .unique()
        .collect(engine="streaming")  # one column, streamed: the driver holds no rows
        .get_column("source_file")
        .to_list()
    )
    return sorted(s for s in held if s is not None and s not in present)


def stored_tasks(entries: Mapping[str, Mapping[str, Any]]) -> list[PartitionTask]:
    """Tasks that load unchanged partitions' stored rows (and vectors); nothing is read anew."""
    return [
        PartitionTask(
            key=key,
            index=entry["index"],
            source=None,
            previous_files=tuple(entry["files"]),
            previous_vectors=entry.get("vectors"),
        )
        for key, entry in entries.items()
    ]


def source_storage_options(config: JobConfig, files: Sequence[Any]) -> dict[str, str] | None:
    """The source's storage options, ``${NAME}`` read here (workers may lack the variables)."""
    if not any(is_remote(f.path) for f in files):
        return None
    return expand_options(config.storage_options_for("source")) or None


def embed_settings(run: RunContext, embedder: Embedder | None) -> EmbedSettings | None:
    """What the workers need to embed (None: embeddings are off)."""
    if embedder is None:
        return None
    config, paths = run.config, run.paths
    column = config.embedding_input_column
    assert column is not None  # embeddings are on
    cache_options = expand_options(paths.embeddings.storage_options) or None
    vectors = paths.embeddings / "vectors"
    return EmbedSettings(
        spec=embedder.spec,
        input_column=column,
        output_column=config.embeddings.output_column,
        attach=embedder.attach,
        rebuild=embedder.rebuild,
        batch_size=config.embeddings.batch_size,
        cache=Location.of(str(paths.embeddings), cache_options),
        vectors=str(vectors),
        options=cache_options,
    )


def partitions_to_rewrite(
    stored: Mapping[str, pl.DataFrame],
    small: pl.DataFrame,
    votes: Sequence[str],
    classes: Sequence[str],
    tolerance: float,
) -> set[str]:
    """The unchanged partitions where the refitted model moves a row past the tolerance.

    A row moves when its label or review flag flips, or a probability moves by more than
    ``tolerance``, against what the partition's file holds (its stored summary).
    """
    if not stored:
        return set()
    proba = [f"proba_{c}" for c in classes]
    new = small.select(
        *votes,
        pl.col("label").alias("_new_label"),
        pl.col("needs_review").alias("_new_review"),
        *(pl.col(c).alias(f"_new_{c}") for c in proba),
    )
    frames = [
        frame.select(*votes, "label", "needs_review", *proba).with_columns(
            pl.lit(key).alias("_partition")
        )
        for key, frame in stored.items()
    ]
    joined = pl.concat(frames, how="vertical_relaxed").join(new, on=list(votes), how="left")
    moved = pl.max_horizontal([(pl.col(c) - pl.col(f"_new_{c}")).abs() for c in proba])
    flags = joined.select(
        "_partition",
        (
            pl.col("label").cast(pl.Int64).ne_missing(pl.col("_new_label").cast(pl.Int64))
            | (pl.col("needs_review") != pl.col("_new_review"))
            | ((moved > tolerance) if tolerance > 0 else (moved > 0))
        )
        .fill_null(True)
        .alias("_moves"),
    )
    return set(flags.filter(pl.col("_moves")).get_column("_partition").unique().to_list())
