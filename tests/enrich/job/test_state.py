"""Incremental state of the job: asset status, assembling, what to rewrite, the previous table."""

import numpy as np
import polars as pl
import pytest

from enrich.errors import InputError, SourceSchemaError
from enrich.io.store import commit_enriched
from enrich.job.plan import ColumnPlan
from enrich.job.state import (
    STATE_FORMAT,
    assemble,
    asset_status,
    compare_previous,
    empty_state,
    load_previous,
    rewrite_mask,
)
from enrich.votes import VoteMatrix

PLAN = ColumnPlan(
    id_column="asset_id",
    read=("asset_id", "text", "video"),
    hash_columns=("text", "video"),
    slices=("video",),
    gold_column=None,
    dtypes={"asset_id": pl.Int64, "text": pl.String, "video": pl.String},
)

# What the table holds after a run over assets 1, 2, 3 with LFs a and b.
STATE = pl.DataFrame(
    {
        "asset_id": [1, 2, 3],
        "content_hash": [11, 22, 33],
        "source_file": ["f1", "f1", "f2"],
        "video": ["v1", "v1", "v2"],
        "vote_a": pl.Series([1, 0, -1], dtype=pl.Int32),
        "vote_b": pl.Series([-1, 0, 1], dtype=pl.Int32),
        "label": pl.Series([1, 0, 1], dtype=pl.Int32),
        "needs_review": [False, False, True],
        "proba_HAM": [0.1, 0.9, 0.4],
        "proba_SPAM": [0.9, 0.1, 0.6],
    }
)


def votes(ids, names, matrix):
    return VoteMatrix(
        votes=np.array(matrix, dtype=np.int32).reshape(len(ids), len(names)),
        lf_names=tuple(names),
        asset_ids=pl.Series("asset_id", ids, dtype=pl.Int64),
    )


def test_status_marks_new_and_changed_assets_by_content_hash():
    data = pl.DataFrame(
        {"asset_id": [1, 2, 4], "content_hash": [11, 99, 44], "source_file": ["f1"] * 3}
    )
    status = asset_status(data, STATE, {"f2"})
    assert status.rows() == [
        (1, False, False, False),
        (2, False, True, False),
        (4, True, False, False),
    ]
    everything = asset_status(data, STATE, {"f2"}, all_changed=True)
    assert everything.get_column("_changed").to_list() == [True, True, False]


def test_an_asset_moved_next_to_an_unread_copy_is_refused():
    data = pl.DataFrame({"asset_id": [3], "content_hash": [33], "source_file": ["f3"]})
    with pytest.raises(InputError, match=r"\(id, new file, earlier file\) \[\(3, 'f3', 'f2'\)\]"):
        asset_status(data, STATE, {"f2"})
    # f2 was re-read: asset 3 moved from f2 to f3 (its row is rewritten with its new file)
    assert asset_status(data, STATE, set()).rows() == [(3, False, False, True)]


def test_the_empty_state_has_the_ids_type_and_no_rows():
    state = empty_state(pl.DataFrame({"asset_id": ["x"]}))
    assert state.schema == {
        "asset_id": pl.String,
        "content_hash": pl.Int64,
        "source_file": pl.String,
    }
    assert state.height == 0


def test_assemble_joins_new_votes_kept_votes_and_unread_assets():
    # asset 2 changed, asset 4 is new (both voted by a, b and the new LF c); asset 1 is
    # unchanged and read (only the new LF c runs on it); asset 3 was not read.
    data = pl.DataFrame(
        {
            "asset_id": [4, 2, 1],
            "content_hash": [44, 99, 11],
            "source_file": ["f1", "f1", "f1"],
            "text": ["d", "b2", "a"],
            "video": ["v3", "v1", "v1"],
        }
    )
    fresh_rows = data.filter(pl.col("asset_id") != 1)
    full, stale = assemble(
        STATE,
        data=data,
        fresh_rows=fresh_rows,
        fresh_votes=votes([4, 2], "abc", [[0, 0, 1], [1, -1, 1]]),
        revote_rows=data.filter(pl.col("asset_id") == 1),
        revotes=votes([1], "c", [[0]]),
        lf_names=["a", "b", "c"],
        lfs_changed=True,
        plan=PLAN,
    )
    assert full.get_column("asset_id").to_list() == [1, 2, 3, 4]  # sorted by id
    assert full.select("vote_a", "vote_b", "vote_c").rows() == [
        (1, -1, 0),  # kept votes, the new LF re-run
        (1, -1, 1),  # all new votes
        (-1, 1, -1),  # not read: kept, and c never ran on it (abstain)
        (0, 0, 1),
    ]
    assert full.get_column("content_hash").to_list() == [11, 99, 33, 44]
    assert full.get_column("video").to_list() == ["v1", "v1", "v2", "v3"]
    assert full.get_column("_stale").to_list() == [False, False, True, False]
    assert stale == 1
    # the previous outputs ride along for the comparison; null for the new asset
    assert full.get_column("_prev_label").to_list() == [1, 0, 1, None]
    assert full.schema["vote_c"] == pl.Int32


def test_nothing_is_stale_when_no_lf_changed():
    data = STATE.select("asset_id", "content_hash", "source_file", "video").head(1)
    full, stale = assemble(
        STATE,
        data=data,
        fresh_rows=data.head(0),
        fresh_votes=votes([], "ab", []),
        revote_rows=data,
        revotes=None,
        lf_names=["a", "b"],
        lfs_changed=False,
        plan=PLAN,
    )
    assert stale == 0 and not full.get_column("_stale").any()
    assert full.select("vote_a", "vote_b").rows() == [(1, -1), (0, 0), (-1, 1)]


def enriched(labels, review, ham):
    return pl.DataFrame(
        {
            "asset_id": [1, 2, 3],
            "label": pl.Series(labels, dtype=pl.Int32),
            "needs_review": review,
            "proba_HAM": ham,
            "proba_SPAM": [1 - p for p in ham],
        }
    )


def test_compare_previous_and_the_rows_an_incremental_run_rewrites():
    full = STATE.select(
        "asset_id",
        *(
            pl.col(c).alias(f"_prev_{c}")
            for c in ("label", "needs_review", "proba_HAM", "proba_SPAM")
        ),
    )
    now = enriched([1, 1, 1], [False, False, True], [0.1, 0.4, 0.45])
    compared = compare_previous(now, full, ["HAM", "SPAM"])
    assert compared.get_column("_prev_label").to_list() == [1, 0, 1]
    assert np.allclose(compared.get_column("_moved").to_numpy(), [0.0, 0.5, 0.05])
    status = pl.DataFrame({"asset_id": [1, 2, 3], "_new": [False] * 3, "_changed": [False] * 3})
    # asset 2 flipped its label; asset 3 moved 0.05: written only below that tolerance
    assert rewrite_mask(now, compared, status, 0.1).to_list() == [False, True, False]
    assert rewrite_mask(now, compared, status, 0.01).to_list() == [False, True, True]
    touched = status.with_columns(pl.Series("_changed", [True, False, False]))
    assert rewrite_mask(now, compared, touched, 0.1).to_list() == [True, True, False]
    flagged = enriched([1, 1, 1], [True, False, True], [0.1, 0.4, 0.4])
    assert rewrite_mask(flagged, compared, status, 0.1).to_list() == [True, True, False]


def test_compare_previous_without_previous_outputs_is_all_null():
    now = enriched([1, 0, 1], [False] * 3, [0.2] * 3)
    compared = compare_previous(now, now.select("asset_id"), ["HAM", "SPAM"])
    assert compared.null_count().row(0) == (3, 3, 3)
    status = pl.DataFrame({"asset_id": [1, 2, 3], "_new": [True] * 3, "_changed": [False] * 3})
    assert rewrite_mask(now, compared, status, 0.0).all()


def table_rows():
    return STATE.with_columns(
        pl.lit("run-1").alias("run_id"),
        pl.lit("model").alias("model_version"),
        pl.lit("{}").alias("lf_versions"),
        pl.lit(0.9).alias("confidence"),
    )


def test_load_previous_reads_the_state_columns_of_the_last_run(tmp_path):
    table = tmp_path / "enriched"
    assert load_previous(table, id_column="asset_id", id_dtype=pl.Int64) is None
    record = {"state_format": STATE_FORMAT, "run_id": "run-1"}
    commit_enriched(table, table_rows(), mode="create", read_version=None, record=record)
    previous = load_previous(table, id_column="asset_id", id_dtype=pl.Int64)
    assert previous.version == 0 and previous.record["run_id"] == "run-1"
    assert previous.state.sort("asset_id").equals(STATE)  # no lineage or derived column
    assert load_previous(table, id_column="asset_id", id_dtype=None) is not None
    with pytest.raises(SourceSchemaError, match="cast it to Int64"):
        load_previous(table, id_column="id", id_dtype=pl.String)


def test_a_table_of_another_writer_or_state_format_is_refused(tmp_path):
    from deltalake import write_deltalake

    foreign = tmp_path / "foreign"
    write_deltalake(str(foreign), STATE.to_arrow())
    with pytest.raises(InputError, match="that enrich did not write"):
        load_previous(foreign, id_column="asset_id", id_dtype=pl.Int64)
    old = tmp_path / "old"
    record = {"state_format": STATE_FORMAT + 1, "run_id": "run-1"}
    commit_enriched(old, table_rows(), mode="create", read_version=None, record=record)
    with pytest.raises(InputError, match="another enrich state format"):
        load_previous(old, id_column="asset_id", id_dtype=pl.Int64)
