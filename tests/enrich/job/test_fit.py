"""The job's label-model steps: vote matrix, gold, the fit per vote pattern, enriched rows."""

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from enrich._internal.vote_arrays import compress_votes
from enrich.errors import InputError
from enrich.job.fit import (
    distinct_with_gold,
    enriched_by_pattern,
    fit_predict,
    gold_labels,
    kept_structure,
    model_json,
    no_votes,
    source_gold,
    vote_matrix,
    with_extras,
)
from enrich.job.plan import ColumnPlan
from enrich.models.label_model import LabelModel
from enrich.models.output import enriched_table
from labeling_functions import keyword_lf

CLASSES = ("HAM", "SPAM")
LFS = [keyword_lf("a", ["x"], label=1), keyword_lf("b", ["y"], label=0)]
RNG = np.random.default_rng(7)
# 60 assets with a few repeated vote patterns, as real votes have
VOTES = RNG.choice([-1, 0, 1], size=(60, 3), p=[0.5, 0.2, 0.3]).astype(np.int32)


def full_frame(votes=VOTES[:, :2], **columns):
    data = {"asset_id": np.arange(100, 100 + len(votes))}
    data |= {f"vote_{lf.name}": votes[:, j] for j, lf in enumerate(LFS)}
    return pl.DataFrame(data | columns)


def test_the_vote_matrix_is_read_in_lf_order():
    full = full_frame()
    matrix = vote_matrix(full.select("asset_id", "vote_b", "vote_a"), LFS, CLASSES)
    assert matrix.votes.dtype == np.int32 and matrix.votes.flags.c_contiguous
    assert np.array_equal(matrix.votes, VOTES[:, :2])
    assert matrix.lf_names == ("a", "b") and matrix.class_names == CLASSES
    assert matrix.lf_versions == tuple(lf.version for lf in LFS)
    assert matrix.asset_ids.to_list() == full.get_column("asset_id").to_list()
    assert vote_matrix(full, [], CLASSES).votes.shape == (60, 0)
    empty = no_votes(LFS, full.head(0), CLASSES)
    assert empty.votes.shape == (0, 2) and empty.lf_names == ("a", "b")


def test_source_gold_takes_class_names_or_ids():
    names = pl.DataFrame({"g": ["SPAM", None, "HAM", "-1", ""]})
    assert source_gold(names, "g", CLASSES).to_list() == [1, -1, 0, -1, -1]
    ids = pl.DataFrame({"g": [1, None, 0, -1]})
    gold = source_gold(ids, "g", CLASSES)
    assert gold.name == "gold" and gold.dtype == pl.Int32 and gold.to_list() == [1, -1, 0, -1]
    with pytest.raises(InputError, match=r"holds \['EGGS'\], which are not classes"):
        source_gold(pl.DataFrame({"g": ["HAM", "EGGS"]}), "g", CLASSES)
    with pytest.raises(InputError, match=r"holds \[2\], outside the class ids 0..1"):
        source_gold(pl.DataFrame({"g": [0, 2]}), "g", CLASSES)
    with pytest.raises(InputError, match="is Float64"):
        source_gold(pl.DataFrame({"g": [0.5]}), "g", CLASSES)


def test_reviewed_gold_overrides_the_source_and_settles_its_assets():
    full = full_frame(VOTES[:4, :2], gold=pl.Series([1, -1, 0, -1], dtype=pl.Int32))
    assert gold_labels(
        full, classes=CLASSES, source_column=False, reviewed=None, use_in_fit=True
    ) == (
        None,
        None,
    )
    gold, settled = gold_labels(
        full, classes=CLASSES, source_column=True, reviewed=None, use_in_fit=False
    )
    assert gold.tolist() == [1, -1, 0, -1] and not settled.any()  # scoring only
    gold, settled = gold_labels(
        full, classes=CLASSES, source_column=True, reviewed=None, use_in_fit=True
    )
    assert settled.tolist() == [True, False, True, False]
    reviewed = pl.DataFrame({"asset_id": [100, 101], "label_name": ["HAM", "SPAM"]})
    gold, settled = gold_labels(
        full, classes=CLASSES, source_column=True, reviewed=reviewed, use_in_fit=False
    )
    assert gold.tolist() == [0, 1, 0, -1]
    assert settled.tolist() == [True, True, False, False]


def test_distinct_with_gold_splits_patterns_by_gold_label():
    votes = np.array([[1, -1], [1, -1], [1, -1], [0, 0]], dtype=np.int32)
    assert distinct_with_gold(votes, None) is None
    assert distinct_with_gold(votes, np.array([-1, -1, -1, -1])) is None
    labelled = distinct_with_gold(votes, np.array([1, 0, 1, -1]))
    rows = {tuple(p): c for p, c in zip(labelled.patterns.tolist(), labelled.counts, strict=True)}
    assert rows == {(1, -1, 1): 2, (1, -1, 0): 1, (0, 0, -1): 1}


def test_the_fit_per_pattern_equals_the_fit_on_every_row(tmp_path):
    patterns = compress_votes(VOTES)
    assert patterns.n_patterns < len(VOTES)
    model, proba = fit_predict(patterns, None, cardinality=2, random_state=0, params={})
    assert proba.dtype == np.float64 and proba.shape == (patterns.n_patterns, 2)
    every_row = LabelModel(cardinality=2, random_state=0).fit(VOTES).predict_proba(VOTES)
    assert np.allclose(proba[patterns.inverse], every_row, atol=1e-6)
    again = fit_predict(patterns, None, cardinality=2, random_state=0, params={})[1]
    assert np.array_equal(proba, again)
    saved = tmp_path / "model.json"
    saved.write_text(model_json(model))  # what the run record keeps
    assert np.allclose(LabelModel.load(saved).predict_proba(VOTES), every_row)


def test_the_fit_learns_from_gold_when_given():
    gold = np.where(VOTES[:, 0] >= 0, VOTES[:, 0], -1)
    gold[::2] = -1
    patterns = compress_votes(VOTES)
    labelled = distinct_with_gold(VOTES, gold)
    _, proba = fit_predict(patterns, labelled, cardinality=2, random_state=0, params={})
    every_row = LabelModel(cardinality=2, random_state=0).fit(VOTES, y=gold)
    assert np.allclose(proba[patterns.inverse], every_row.predict_proba(VOTES), atol=1e-6)


def test_unknown_label_model_params_are_named():
    with pytest.raises(InputError, match=r"label_model.params \{'speed': 3\} are not options"):
        fit_predict(compress_votes(VOTES), None, cardinality=2, random_state=0, params={"speed": 3})


def test_the_enriched_table_per_pattern_equals_the_one_of_every_row():
    full = full_frame()
    matrix = vote_matrix(full, LFS, CLASSES)
    patterns = compress_votes(matrix.votes)
    _, pattern_proba = fit_predict(patterns, None, cardinality=2, random_state=0, params={})
    options = {
        "run_id": "run-1",
        "model_version": "m1",
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "review_below": 0.7,
    }
    fast = enriched_by_pattern(matrix, pattern_proba, patterns, **options)
    slow = enriched_table(matrix, pattern_proba[patterns.inverse], **options)
    assert fast.equals(slow)


def test_with_extras_adds_state_columns_and_stale_rows_keep_their_lf_versions():
    plan = ColumnPlan(
        id_column="asset_id",
        read=("asset_id", "video"),
        hash_columns=("video",),
        slices=("video",),
        gold_column=None,
        dtypes={"asset_id": pl.Int64, "video": pl.String},
    )
    full = pl.DataFrame(
        {
            "asset_id": [1, 2],
            "content_hash": [5, 6],
            "source_file": ["f", "g"],
            "video": ["v1", "v2"],
            "_stale": [False, True],
        }
    )
    enriched = pl.DataFrame({"asset_id": [1, 2], "lf_versions": ['{"a": "new"}'] * 2})
    out = with_extras(
        enriched, full, plan=plan, lf_versions={"a": "new"}, prev_versions={"a": "old"}
    )
    assert out.columns == ["asset_id", "lf_versions", "content_hash", "source_file", "video"]
    assert [json.loads(v) for v in out.get_column("lf_versions")] == [{"a": "new"}, {"a": "old"}]


def test_the_structure_is_chosen_again_when_lfs_change_or_many_assets_do():
    record = {"label_model_structure": {"structure": "em", "chosen_at_assets": 1000}}
    keep = {"n_assets": 1050, "n_changed": 50, "params": {}}
    assert kept_structure(record, lfs_changed=False, **keep) == ("em", 1000)
    assert kept_structure(record, lfs_changed=True, **keep) == (None, 1050)
    assert kept_structure(None, lfs_changed=False, **keep) == (None, 1050)
    assert kept_structure({}, lfs_changed=False, **keep) == (None, 1050)  # runs before it
    pinned = {**keep, "params": {"structure": "vote"}}  # the user's choice is not overridden
    assert kept_structure(record, lfs_changed=False, **pinned) == (None, 1050)
    # changes add up over the runs that kept the choice
    record["label_model_structure"]["changed_since"] = 60
    assert kept_structure(record, lfs_changed=False, **keep) == (None, 1050)


def sampled_youtube_votes(n_assets: int):
    """Votes of keyword LFs on ``n_assets`` comments drawn from YouTube (as nightly assets
    repeat content), a 5%-coverage HAM LF beside them, and the gold of every 20th asset."""
    from enrich.datasets import load_youtube_spam
    from enrich.labeling.apply import apply
    from labeling_functions import regex_lf

    lfs = [
        keyword_lf("check_out", ["check out", "check my"], label="SPAM"),
        keyword_lf("subscribe", ["subscribe", "sub4sub"], label="SPAM"),
        keyword_lf("my_channel", ["my channel", "my video"], label="SPAM"),
        keyword_lf("please", ["please", "plz"], label="SPAM"),
        regex_lf("link", r"https?://|www\.|\.com\b", label="SPAM", ignore_case=True),
        keyword_lf("song", ["song", "love", "beautiful", "voice"], label="HAM"),
        keyword_lf("best", ["best", "lyrics", "dance"], label="HAM"),
    ]
    data = load_youtube_spam()
    votes = np.asarray(apply(lfs, data, classes=CLASSES).votes)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(votes), n_assets)
    near = np.where(rng.random(n_assets) < 0.05, 0, -1)
    gold = data.get_column("label").to_numpy()[rows].copy()
    gold[np.arange(n_assets) % 20 != 0] = -1
    return np.column_stack([votes[rows], near]).astype(np.int32), gold


@pytest.mark.parametrize(("n_assets", "with_gold"), [(50_000, False), (30_000, True)])
def test_a_kept_structure_predicts_what_choosing_it_again_does(n_assets, with_gold):
    """A kept "em" is the model "auto" fits when it chooses EM: rows without votes get the
    majority-vote balance and gold only weighs in the choice (LabelModel(structure="em")
    alone gives such rows EM's own balance: a third of these assets moved by 0.16)."""
    votes, gold = sampled_youtube_votes(n_assets)
    patterns = compress_votes(votes)
    labelled = distinct_with_gold(votes, gold) if with_gold else None
    chosen, proba = fit_predict(patterns, labelled, cardinality=2, random_state=0, params={})
    assert chosen.structure_ == "em"
    kept, again = fit_predict(
        patterns, labelled, cardinality=2, random_state=0, params={}, structure="em"
    )
    assert np.allclose(again, proba, rtol=0, atol=1e-9)
    assert np.allclose(kept.class_balance_, chosen.class_balance_)
    json.loads(model_json(kept))  # the run record keeps it


def test_a_refit_on_one_percent_more_assets_moves_no_pattern_past_the_tolerance():
    """The +1% run refits with the kept structure: at 1M assets no vote pattern moves by
    half of output.proba_tolerance (0.005), so unchanged partitions are not rewritten."""
    votes, _ = sampled_youtube_votes(1_010_000)
    before = compress_votes(votes[:1_000_000])
    chosen, proba = fit_predict(before, None, cardinality=2, random_state=0, params={})
    after = compress_votes(votes)
    _, refit = fit_predict(
        after, None, cardinality=2, random_state=0, params={}, structure=chosen.structure_
    )
    index = {tuple(row): i for i, row in enumerate(after.patterns.tolist())}
    same = refit[[index[tuple(row)] for row in before.patterns.tolist()]]
    assert np.abs(same - proba).max() < 0.005 / 2
