"""Multi-label scores, per-label LF summary and the enriched table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import f1_score

import enrich
from enrich.errors import InputError
from enrich.multilabel_votes import MultiLabelVoteMatrix


def test_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    gold = (rng.random((200, 4)) < 0.4).astype(int)
    predicted = np.where(rng.random((200, 4)) < 0.8, gold, 1 - gold)
    scores = enrich.multilabel_scores(gold, predicted, label_names=["a", "b", "c", "d"])
    assert scores.per_label["label"].to_list() == ["a", "b", "c", "d"]
    assert scores.per_label["f1"].to_list() == pytest.approx(
        f1_score(gold, predicted, average=None).tolist()
    )
    assert scores.macro_f1 == pytest.approx(f1_score(gold, predicted, average="macro"))
    assert scores.micro_f1 == pytest.approx(f1_score(gold, predicted, average="micro"))
    assert scores.subset_accuracy == pytest.approx((gold == predicted).all(axis=1).mean())
    assert "macro F1" in scores._display_totals()


def test_unknown_gold_is_not_scored() -> None:
    scores = enrich.multilabel_scores([[1, -1], [0, 1]], [[1, 1], [1, 1]])
    assert scores.per_label["n_scored"].to_list() == [2, 1]
    assert scores.per_label["precision"].to_list() == [0.5, 1.0]
    assert scores.subset_accuracy == 0.0 and scores.n_assets == 2
    with pytest.raises(InputError, match="shape"):
        enrich.multilabel_scores([[1, 0]], [[1]])
    with pytest.raises(InputError, match="1 \\(present\\)"):
        enrich.multilabel_scores([[2]], [[1]])


def _votes() -> MultiLabelVoteMatrix:
    votes = np.zeros((4, 2, 2), dtype=np.int8)
    votes[0, 0, 0] = votes[1, 0, 0] = 1
    votes[1, 1, 0] = -1
    votes[2, 1, 1] = 1
    return MultiLabelVoteMatrix(
        votes=votes,
        lf_names=("a", "b"),
        label_names=("cat", "dog"),
        asset_ids=pl.Series(["w", "x", "y", "z"]),
        lf_targets=((0,), None),
    )


def test_lf_summary_per_label() -> None:
    summary = enrich.multilabel_lf_summary(_votes(), gold=[[1, 0], [0, 0], [0, 1], [-1, -1]])
    assert summary.select("label", "lf").rows() == [("cat", "a"), ("cat", "b"), ("dog", "b")]
    assert summary["coverage"].to_list() == [0.5, 0.25, 0.25]
    assert summary["conflicts"].to_list() == [0.25, 0.25, 0.0]
    assert summary["accuracy"].to_list() == [0.5, 1.0, 1.0]
    assert "accuracy" not in enrich.multilabel_lf_summary(_votes()).columns


def test_enriched_table_has_a_probability_per_label_and_the_set() -> None:
    proba = [[0.9, 0.1], [0.55, 0.2], [0.2, 0.8], [0.3, 0.3]]
    table = enrich.multilabel_table(_votes(), proba, thresholds=[0.5, 0.5])
    assert table.columns == [
        "asset_id", "p_cat", "p_dog", "labels", "n_labels", "voted", "conflict",
        "uncertain_labels", "review",
    ]  # fmt: skip
    assert table["labels"].to_list() == [["cat"], ["cat"], ["dog"], []]
    assert table["conflict"].to_list() == [False, True, False, False]
    assert table["uncertain_labels"].to_list() == [[], ["cat"], [], []]
    assert table["review"].to_list() == [False, True, False, False]
    assert table["voted"].to_list() == [True, True, True, False]
    with pytest.raises(InputError, match="proba"):
        enrich.multilabel_table(_votes(), [[0.5]])


def test_enriched_table_lineage_and_model_columns() -> None:
    import dataclasses
    import datetime as dt
    import json

    proba = [[0.9, 0.1], [0.55, 0.2], [0.2, 0.8], [0.3, 0.3]]
    when = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    votes = dataclasses.replace(_votes(), lf_versions=("v1", "v2"))
    table = enrich.multilabel_table(
        votes,
        proba,
        model_proba=[[0.8, 0.1], [0.1, 0.2], [0.3, 0.9], [0.6, 0.7]],
        run_id="r1",
        created_at=when,
    )
    assert table["model_labels"].to_list() == [["cat"], [], ["dog"], ["cat", "dog"]]
    assert table["model_p_dog"].to_list() == [0.1, 0.2, 0.9, 0.7]
    assert table["vote_b"].to_list() == [[0, 0], [-1, 0], [0, 1], [0, 0]]
    assert table["run_id"].unique().to_list() == ["r1"]
    assert table["created_at"].unique().to_list() == [when]
    assert json.loads(table["lf_versions"][0]) == {"a": "v1", "b": "v2"}
