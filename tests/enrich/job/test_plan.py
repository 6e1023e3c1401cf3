"""Column planning and content hashing of the job, on small real frames and real LFs."""

import threading

import polars as pl
import pytest

from enrich.errors import InputError, MissingColumnError, SourceSchemaError
from enrich.job.plan import (
    HASH_SEED,
    check_lf_names,
    content_hash,
    lfs_to_rerun,
    plan_columns,
    schema_changes,
    unstable_lf_warnings,
)
from enrich.job.sources import SourceFile
from labeling_functions import ABSTAIN, expression_lf, keyword_lf, labeling_function

TEXT = keyword_lf("spam_words", ["subscribe"], label=1)
SHORT = expression_lf("short", pl.col("n_chars") < 10, label=0)


def source(path, **schema):
    return SourceFile(path, "parquet", [1, 1], schema)


def plan(files, lfs, **options):
    settings = {"id_column": "id", "slice_columns": (), "gold_column": None} | options
    return plan_columns(files, lfs, **settings)


FILES = [
    source("a.parquet", id=pl.Int64, text=pl.String, n_chars=pl.Int32, video=pl.String),
    source("b.parquet", id=pl.Int64, text=pl.String, n_chars=pl.Int32, video=pl.String),
]


def test_the_plan_reads_the_id_what_the_lfs_read_slices_and_gold():
    planned = plan(FILES, [TEXT], slice_columns=["video"], gold_column="n_chars")
    assert planned.read == ("id", "n_chars", "text", "video")
    assert planned.hash_columns == ("n_chars", "text", "video")  # never the id
    assert planned.slices == ("video",) and planned.gold_column == "n_chars"
    assert planned.dtypes == {
        "id": pl.Int64,
        "n_chars": pl.Int32,
        "text": pl.String,
        "video": pl.String,
    }
    assert planned.schema_record() == {
        "id": "Int64",
        "n_chars": "Int32",
        "text": "String",
        "video": "String",
    }
    scheme = planned.hash_scheme()
    assert scheme["columns"] == {"n_chars": "Int32", "text": "String", "video": "String"}
    assert scheme["seed"] == HASH_SEED


def test_a_row_wise_lf_reads_what_it_names_or_every_column():
    @labeling_function(label=1)
    def named(x):
        return 1 if "song" in x.text else ABSTAIN

    @labeling_function(label=1)
    def anything(x):
        return 1 if len(vars(x)) > 3 else ABSTAIN  # hands the row on: may read any field

    assert plan(FILES, [named]).read == ("id", "text")
    assert plan(FILES, [anything]).read == ("id", "n_chars", "text", "video")
    assert plan(FILES, [SHORT]).read == ("id", "n_chars")


def test_the_embedding_input_is_hashed_and_its_output_may_be_missing():
    vector_lf = expression_lf("near", pl.col("vec").list.len() > 0, label=1)
    planned = plan(FILES, [vector_lf], embedding_input="text", embedding_output="vec")
    assert planned.read == ("id", "text")
    with pytest.raises(MissingColumnError, match=r"\['vec'\]"):
        plan(FILES, [vector_lf], embedding_input="text")


def test_two_files_with_different_types_are_named():
    clash = [*FILES, source("c.parquet", id=pl.Int64, text=pl.String, n_chars=pl.Float64)]
    with pytest.raises(SourceSchemaError, match=r"'n_chars' is Int32 in 'a.parquet'.*'c.parquet'"):
        plan(clash, [SHORT])


def test_an_lf_reading_a_missing_column_lists_the_available_ones():
    missing = expression_lf("long", pl.col("length") > 3, label=0)
    with pytest.raises(MissingColumnError) as caught:
        plan(FILES, [TEXT, missing])
    assert "['long']" in str(caught.value) and "'n_chars'" in str(caught.value)
    assert plan([], [missing]).read == ("id",)  # no file yet: nothing to check against


@pytest.mark.parametrize("name", ["label", "run_id", "vote_x", "proba_SPAM", "index_id"])
def test_a_slice_column_may_not_take_an_enriched_column_name(name):
    files = [source("a.parquet", id=pl.Int64, **{name: pl.String})]
    with pytest.raises(InputError, match="clashes with a column of the enriched table"):
        plan(files, [], slice_columns=[name])


def test_an_asset_id_column_that_is_not_the_id_is_refused():
    files = [source("a.parquet", id=pl.Int64, asset_id=pl.Int64)]
    with pytest.raises(InputError, match=r"set source\.id_column = 'asset_id'"):
        plan(files, [])
    assert plan(files, [], id_column="asset_id").read == ("asset_id",)


def test_repeated_lf_names_are_refused():
    check_lf_names([TEXT, SHORT])
    with pytest.raises(InputError, match=r"repeated: \['short'\]"):
        check_lf_names([TEXT, SHORT, SHORT])


def test_the_content_hash_follows_the_hashed_columns_only():
    data = pl.DataFrame({"id": [1, 2, 3], "text": ["a", "b", "a"], "other": [1, 2, 3]})
    hashed = content_hash(data, ["text"])
    assert hashed.name == "content_hash" and hashed.dtype == pl.Int64
    assert hashed[0] == hashed[2] != hashed[1]
    edited = data.with_columns(pl.Series("other", [9, 9, 9]))
    assert content_hash(edited, ["text"]).equals(hashed)
    assert not content_hash(data.with_columns(pl.lit("z").alias("text")), ["text"]).equals(hashed)
    assert content_hash(data, []).to_list() == [0, 0, 0]
    assert content_hash(data.head(0), ["text"]).len() == 0


def test_a_type_change_since_the_last_run_warns_and_an_id_type_change_is_refused():
    planned = plan(FILES, [SHORT])
    record = {"run_id": "r1", "source": {"schema": {"id": "Int64", "n_chars": "Int64"}}}
    (change,) = schema_changes(record, planned)
    assert "'n_chars' Int64 -> Int32" in change and "run r1" in change
    assert schema_changes({"source": {"schema": planned.schema_record()}}, planned) == []
    with pytest.raises(SourceSchemaError, match="the asset id"):
        schema_changes({"source": {"schema": {"id": "String"}}}, planned)


def test_lfs_to_rerun_names_new_changed_unstable_and_requested_lfs():
    def uses(x, lock=None):
        return ABSTAIN

    kept = keyword_lf("kept", ["subscribe"], label=1)
    asked = keyword_lf("asked", ["free"], label=1)
    locked = labeling_function(uses, name="locked", resources={"lock": threading.Lock()})
    new = keyword_lf("new", ["win"], label=1)
    before = {lf.name: lf.version for lf in (kept, asked, locked)}
    lfs = [kept, asked, locked, new]

    changed, unstable = lfs_to_rerun(lfs, before, classes_changed=False, rerun=frozenset({"asked"}))
    assert [lf.name for lf in changed] == ["asked", "locked", "new"]
    assert list(unstable) == ["locked"]
    (warning,) = unstable_lf_warnings(unstable)
    assert "'locked'" in warning and "lock" in warning
    every, _ = lfs_to_rerun(lfs, before, classes_changed=True)
    assert every == lfs
