"""review_queue(): hand-computed scores, every reason, ties, exclusions, the refit purpose's
spreading over vote patterns, real WRENCH votes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from enrich.curation.review import REASONS, queue_from_votes, review_queue
from enrich.errors import InputError, MissingColumnError

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("ENRICH_SHARED_DATA", REPO.parent / "shared" / "data"))


def enriched() -> pl.DataFrame:
    """Five assets shaped like ``enriched_table`` output (the columns the queue reads)."""
    return pl.DataFrame(
        {
            "asset_id": ["a", "b", "c", "d", "e"],
            "label": [1, 1, 0, 0, 1],
            "label_name": ["SPAM", "SPAM", "HAM", "HAM", "SPAM"],
            "confidence": [0.35, 0.90, 0.50, 0.99, 0.35],
            "conflict": [False, True, False, False, False],
            "all_abstain": [False, False, True, False, False],
            "vote_kw": [1, 1, -1, 0, 1],
            "vote_short": [-1, 0, -1, 0, 1],
        }
    )


def test_scores_by_hand_and_ties_broken_at_random():
    queue = review_queue(enriched(), batch_size=10)
    # a, e: low confidence, severity 1 - 0.35/0.7 = 0.5 -> 0.5 + 0.25 = 0.75.
    # b: conflict, 1 of its 2 votes against the label -> severity 0.5 -> 0.75.
    # c: low confidence (severity 1 - 0.5/0.7) + no LF votes (severity 1).
    c_score = (0.5 + 0.5 * (1 - 0.5 / 0.7)) + 1.0
    assert queue.table["rank"].to_list() == [1, 2, 3, 4]
    assert queue.asset_ids[0] == "c" and sorted(queue.asset_ids[1:]) == ["a", "b", "e"]
    assert queue.table["score"].to_list() == pytest.approx([c_score, 0.75, 0.75, 0.75])
    by_id = {r["asset_id"]: r for r in queue.table.iter_rows(named=True)}
    assert by_id["c"]["reasons"] == ["low_confidence", "no_lf_votes"]
    assert by_id["a"]["reasons"] == by_id["e"]["reasons"] == ["low_confidence"]
    assert by_id["b"]["reasons"] == ["lf_conflict"]
    assert by_id["c"]["why"] == "confidence 0.50 < 0.7; no LF voted"
    assert by_id["a"]["why"] == "confidence 0.35 < 0.7"
    assert by_id["b"]["why"] == "LFs disagree (1 of 2 votes against the label)"
    # the tie order is seeded: the same seed gives the same queue, others may differ
    orders = {tuple(review_queue(enriched(), random_state=s).asset_ids) for s in range(20)}
    assert tuple(queue.asset_ids) in orders and len(orders) > 1
    assert queue.n_eligible == 4 and queue.n_assets == 5
    assert queue.reason_counts == {"low_confidence": 3, "lf_conflict": 1, "no_lf_votes": 1}


def test_batch_size_cuts_after_ranking():
    queue = review_queue(enriched(), batch_size=2)
    assert queue.asset_ids[0] == "c" and queue.asset_ids[1] in ("a", "b", "e")
    assert len(queue) == 2 and queue.n_eligible == 4


def test_every_signal_adds_its_reason_to_one_row_per_asset():
    model = pl.DataFrame({"asset_id": ["d", "a"], "label": [1, 1], "confidence": [0.8, 0.9]})
    agreement = pl.DataFrame({"asset_id": ["d", "b"], "agreement": [0.6, 0.9]})
    candidates = pl.DataFrame(
        {
            "asset_id": ["f", "f", "a"],
            "reason": ["class SPAM", "slice video=Psy", None],
            "score": [0.2, 0.6, None],
        }
    )
    queue = review_queue(
        enriched(),
        model_predictions=model,
        annotations_agreement=agreement,
        candidates=candidates,
        batch_size=10,
    )
    table = queue.table
    assert table["asset_id"].is_unique().all()
    rows = {r["asset_id"]: r for r in table.iter_rows(named=True)}
    # d: the model says SPAM (1) with 0.8 -> 0.9; agreement 0.6 < 0.8 -> 0.5 + 0.2 = 0.7.
    assert rows["d"]["reasons"] == ["model_disagreement", "annotator_disagreement"]
    assert rows["d"]["score"] == pytest.approx(1.6)
    assert rows["d"]["why"] == "model says 1, label is 0; annotator agreement 0.60 < 0.8"
    # a: model agrees (no reason); low confidence 0.75 + gap candidate without score 1.0.
    assert rows["a"]["reasons"] == ["low_confidence", "gap_candidate"]
    assert rows["a"]["score"] == pytest.approx(1.75)
    # f is not in the enriched table: queued with null label, both gaps named, best score.
    assert rows["f"]["reasons"] == ["gap_candidate"]
    assert rows["f"]["score"] == pytest.approx(0.8)
    assert rows["f"]["why"] == "gap candidate: class SPAM, slice video=Psy"
    assert rows["f"]["label"] is None and rows["f"]["confidence"] is None
    assert "b" in rows and rows["b"]["reasons"] == ["lf_conflict"]  # agreement 0.9 is fine
    assert table["score"].to_list() == sorted(table["score"].to_list(), reverse=True)


def test_model_predictions_by_label_name():
    model = pl.DataFrame({"asset_id": ["d"], "label_name": ["SPAM"]})
    queue = review_queue(enriched(), model_predictions=model)
    row = queue.table.filter(pl.col("asset_id") == "d").row(0, named=True)
    assert row["reasons"] == ["model_disagreement"] and row["score"] == 1.0
    assert row["why"] == "model says 'SPAM', label is 'HAM'"


def test_exclude_accepts_a_table_a_series_or_a_list():
    for exclude in (pl.DataFrame({"asset_id": ["c", "a"]}), pl.Series(["c", "a"]), ["c", "a"]):
        queue = review_queue(enriched(), exclude=exclude)
        assert queue.asset_ids.to_list() == ["b", "e"]


def test_weights_change_the_order():
    queue = review_queue(enriched(), weights={"lf_conflict": 3.0, "no_lf_votes": 0.0})
    assert queue.asset_ids.to_list()[0] == "b"
    assert queue.table.row(0, named=True)["score"] == pytest.approx(2.25)
    zero = queue.table.filter(pl.col("asset_id") == "c").row(0, named=True)
    assert zero["reasons"] == ["low_confidence", "no_lf_votes"]  # reasons kept at weight 0


def test_same_input_same_queue_and_pandas_input():
    first = review_queue(enriched())
    again = review_queue(enriched().to_pandas())
    assert first.table.equals(again.table)


def test_nothing_to_review_gives_an_empty_queue():
    calm = enriched().with_columns(
        pl.lit(0.99).alias("confidence"),
        pl.lit(False).alias("conflict"),
        pl.lit(False).alias("all_abstain"),
    )
    queue = review_queue(calm)
    assert len(queue) == 0 and queue.n_eligible == 0
    assert "(no rows)" in str(queue)


def test_integer_asset_ids_and_int_exclusions():
    table = enriched().with_columns(pl.Series("asset_id", [5, 4, 3, 2, 1]))
    queue = review_queue(table, exclude=[3], candidates=pd.DataFrame({"asset_id": [2]}))
    assert queue.asset_ids[0] == 2 and sorted(queue.asset_ids[1:]) == [1, 4, 5]


def test_renders_as_a_table():
    queue = review_queue(enriched())
    text = str(queue)
    assert text.startswith("Review queue: 4 of 4 eligible assets (5 assets scored)")
    assert "low_confidence: 3" in text
    assert "<table" in queue._repr_html_()


# -- purpose="refit" -------------------------------------------------------------------------
def patterned() -> pl.DataFrame:
    """Pattern A (kw=1, short=0): a1-a4; pattern B (kw=0, short=1): b1, b2 -- all conflicts
    whose votes split 1 to 1 (refit score 1.0); c1 is confident and agreed on."""
    return pl.DataFrame(
        {
            "asset_id": ["a1", "a2", "a3", "a4", "b1", "b2", "c1"],
            "label": [1, 1, 1, 1, 0, 0, 1],
            "confidence": [0.9] * 6 + [0.95],
            "conflict": [True] * 6 + [False],
            "vote_kw": [1, 1, 1, 1, 0, 0, 1],
            "vote_short": [0, 0, 0, 0, 1, 1, -1],
        }
    )


def test_refit_allocates_picks_over_vote_patterns_by_hand():
    # Priority of a pattern's next pick: score * n / sqrt((g + 1)(g + 2)), g = picks before.
    # A (n=4): 4/sqrt(2) = 2.828, 4/sqrt(6) = 1.633, 4/sqrt(12) = 1.155, 4/sqrt(20) = 0.894.
    # B (n=2): 2/sqrt(2) = 1.414, 2/sqrt(6) = 0.816.
    queue = review_queue(patterned(), purpose="refit")
    # c1 (no reason) tops the batch up: refit returns batch_size assets while any are left
    assert [a[0] for a in queue.asset_ids] == ["a", "a", "b", "a", "a", "b", "c"]
    assert queue.table["rank"].to_list() == [1, 2, 3, 4, 5, 6, 7]
    assert queue.table["score"].to_list() == pytest.approx([1.0] * 6 + [0.0])
    assert queue.n_topped_up == 1 and queue.table["reasons"][6].to_list() == []
    assert "top-up: no reason left" in queue.table["why"][6]
    assert queue.table["why"].to_list()[:3] == [
        "LFs disagree (votes split 1 to 1); pick 1 from a vote pattern of 4 assets (0 reviewed)",
        "LFs disagree (votes split 1 to 1); pick 2 from a vote pattern of 4 assets (0 reviewed)",
        "LFs disagree (votes split 1 to 1); pick 1 from a vote pattern of 2 assets (0 reviewed)",
    ]
    # The default purpose cuts the batch from the top of the ranking: all ties, at random.
    assert len(review_queue(patterned(), batch_size=3)) == 3
    refit = review_queue(patterned(), batch_size=3, purpose="refit").asset_ids
    assert [a[0] for a in refit] == ["a", "a", "b"] and queue.n_topped_up == 1


def test_refit_counts_excluded_assets_of_a_pattern_as_reviewed():
    # a1 reviewed: A's next pick has g = 1 (1.633), then b1 (1.414), a3 (1.155), a4, b2.
    queue = review_queue(patterned(), purpose="refit", exclude=["a1"])
    assert [a[0] for a in queue.asset_ids] == ["a", "b", "a", "a", "b", "c"]
    assert "a1" not in queue.asset_ids.to_list()
    assert queue.table["why"][0].endswith("pick 1 from a vote pattern of 4 assets (1 reviewed)")


def test_refit_weights_leave_out_low_confidence_unless_overridden():
    table = enriched()  # b is the only conflict; a, c, e are low confidence; c has no votes
    only = review_queue(table, purpose="refit")
    # b (votes split 1 to 1) and c (no votes; without proba_* columns the model's split on
    # it is unknown and counts as even): both score 1; the rest tops the batch up
    assert sorted(only.asset_ids[:2]) == ["b", "c"] and only.n_topped_up == 3
    assert only.table["score"].to_list()[:2] == pytest.approx([1.0, 1.0])
    queue = review_queue(
        table, purpose="refit", weights={"low_confidence": 1.0, "no_lf_votes": 0.0}
    )
    # Every asset has a vote pattern of its own (n = 1): priority = score / sqrt(2), so the
    # order is the score order: b (votes split 1 to 1: 1.0), then a and e (low confidence,
    # 0.75) at random; c (no_lf_votes turned off) last.
    c_low = 0.5 + 0.5 * (1 - 0.5 / 0.7)
    assert queue.asset_ids[0] == "b" and sorted(queue.asset_ids[1:3]) == ["a", "e"]
    assert queue.asset_ids[3] == "c"
    assert queue.table["score"].to_list()[:4] == pytest.approx([1.0, 0.75, 0.75, c_low])


def test_refit_weighs_assets_without_votes_by_how_evenly_the_model_splits_on_them():
    # four assets without votes and four whose two votes split 1 to 1: two patterns of 4
    L = np.array([[-1, -1]] * 4 + [[0, 1]] * 4)
    conflicts = np.full((4, 2), 0.5)
    unsure = queue_from_votes(L, np.vstack([np.full((4, 2), 0.5), conflicts]), batch_size=2)
    # both patterns score 1 (an even split): one pick each
    assert sorted(a // 4 for a in unsure.asset_ids.to_list()) == [0, 1]
    note = "no LF voted (the model's likeliest class has probability 0.50)"
    assert any(note in why for why in unsure.table["why"])
    sure = np.vstack([np.tile([0.95, 0.05], (4, 1)), conflicts])
    queue = queue_from_votes(L, sure, batch_size=5)
    # unvoted: score (1 - 0.95) / 0.5 = 0.1, priority 4 * 0.1 / sqrt(2) = 0.28, below the
    # conflicts' fourth pick (4 / sqrt(20) = 0.89): it comes fifth
    assert [a // 4 for a in queue.asset_ids.to_list()] == [1, 1, 1, 1, 0]
    assert queue.table["score"][-1] == pytest.approx(0.1) and queue.n_topped_up == 0


def test_refit_reviews_fewer_assets_without_votes_once_their_gold_shows_a_coin_flip():
    # 40 assets without votes (the model splits 0.5 / 0.5 on them) and 10 conflicts (4 + 6)
    L = np.array([[-1, -1]] * 40 + [[0, 1]] * 4 + [[1, 0]] * 6)
    P = np.full((50, 2), 0.5)
    gold = np.full(50, -1)
    gold[:20] = [0, 1] * 10  # 20 reviewed without votes: half of each class
    blind = queue_from_votes(L, P, batch_size=5, exclude=np.flatnonzero(gold >= 0))
    # without the labels, unvoted (score 1, n = 40, g = 20): 40 / sqrt(21 * 22) = 1.86 and
    # 40 / sqrt(22 * 23) = 1.78 come after the conflicts' 4.24, 2.83, 2.45, before their 1.73
    assert sorted(a >= 40 for a in blind.asset_ids.to_list()).count(False) == 2
    informed = queue_from_votes(L, P, batch_size=5, gold=gold)
    # with them, little is left to learn there (remaining_loss 0.34: priority 0.63), so the
    # conflicts take the whole batch
    assert all(a >= 40 for a in informed.asset_ids.to_list())
    assert not set(informed.asset_ids.to_list()) & set(range(20))  # gold is never queued
    other = gold.copy()
    other[:20] = 1  # every reviewed one says class 1, the model still gives class 0 there
    unsettled = queue_from_votes(L, P, batch_size=5, gold=other)
    assert sum(a < 40 for a in unsettled.asset_ids.to_list()) == 2  # as without the labels


def test_refit_gold_labels_name_the_model_classes():
    table = pl.DataFrame(
        {
            "asset_id": ["u1", "u2", "u3", "c1"],
            "label": [None, None, None, 0],
            "confidence": [None, None, None, 0.5],
            "conflict": [False, False, False, True],
            "all_abstain": [True, True, True, False],
            "proba_ham": [0.5, 0.5, 0.5, 0.5],
            "proba_spam": [0.5, 0.5, 0.5, 0.5],
            "vote_a": [-1, -1, -1, 0],
            "vote_b": [-1, -1, -1, 1],
        }
    )
    by_name = pl.DataFrame({"asset_id": ["u1"], "label_name": ["spam"]})
    queue = review_queue(table, purpose="refit", batch_size=3, gold=by_name)
    assert "u1" not in queue.asset_ids.to_list()
    assert "1 reviewed leave" in " ".join(queue.table["why"].to_list())
    by_id = pl.DataFrame({"asset_id": ["u1"], "label": [1]})
    # any purpose leaves gold out; without proba_* columns gold does nothing else
    assert "u1" not in review_queue(table, batch_size=4, gold=by_id).asset_ids.to_list()
    bare = table.drop("proba_ham", "proba_spam")
    assert "u1" not in review_queue(bare, purpose="refit", gold=by_id).asset_ids.to_list()
    assert queue.asset_ids.equals(
        review_queue(table, purpose="refit", batch_size=3, gold=by_id).asset_ids
    )
    with pytest.raises(InputError, match=r"gold label_name 'eggs' .* is not a class"):
        review_queue(table, purpose="refit", gold=by_name.with_columns(label_name=pl.lit("eggs")))
    with pytest.raises(InputError, match=r"gold label 2 .* is not a class id 0\.\.1"):
        review_queue(table, purpose="refit", gold=by_id.with_columns(label=pl.lit(2)))
    with pytest.raises(MissingColumnError, match=r"needs a 'label_name' or 'label' column"):
        review_queue(table, purpose="refit", gold=by_id.select("asset_id"))
    with pytest.raises(InputError, match="gold must be an int array with one label per row"):
        queue_from_votes(np.array([[0, 1]]), np.array([[0.5, 0.5]]), gold=np.array([0, 1]))


def test_refit_candidate_absent_from_the_table_is_a_pattern_of_its_own():
    # zz (score 1, n = 1): priority 1/sqrt(2) = 0.707, after b2 (0.816).
    queue = review_queue(
        patterned(), purpose="refit", candidates=pl.DataFrame({"asset_id": ["zz"]})
    )
    assert [a[0] for a in queue.asset_ids] == ["a", "a", "b", "a", "a", "b", "z", "c"]
    zz = queue.table.row(6, named=True)
    assert zz["why"] == "gap candidate" and zz["label"] is None


def test_refit_prefers_even_vote_splits_to_lopsided_ones():
    # Two patterns of 3 assets: t* split 1 to 1 (score 1.0), s* split 3 to 1 (score 0.5):
    # priorities 3/sqrt(2) = 2.12, 3/sqrt(6) = 1.22, 3/sqrt(12) = 0.87 against 1.06, 0.61.
    table = pl.DataFrame(
        {
            "asset_id": ["t1", "t2", "t3", "s1", "s2", "s3"],
            "label": [1, 1, 1, 0, 0, 0],
            "confidence": [0.8] * 3 + [0.9] * 3,
            "conflict": [True] * 6,
            "vote_a": [1, 1, 1, 0, 0, 0],
            "vote_b": [0, 0, 0, 0, 0, 0],
            "vote_c": [-1, -1, -1, 0, 0, 0],
            "vote_d": [-1, -1, -1, 1, 1, 1],
        }
    )
    queue = review_queue(table, batch_size=4, purpose="refit")
    assert [a[0] for a in queue.asset_ids] == ["t", "t", "s", "t"]
    assert queue.table["score"].to_list() == pytest.approx([1.0, 1.0, 0.5, 1.0])
    assert queue.table["why"][2].startswith("LFs disagree (votes split 3 to 1)")
    # the default purpose scores by the share of votes against the label: 1 of 2, 1 of 4
    correct = review_queue(table, batch_size=6).table["score"].to_list()
    assert correct == pytest.approx([0.75] * 3 + [0.625] * 3)


def test_refit_needs_the_vote_columns():
    with pytest.raises(InputError, match="no 'vote_<lf>' column"):
        review_queue(enriched().drop("vote_kw", "vote_short"), purpose="refit")


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, InputError, "batch_size"),
        ({"low_confidence": 0}, InputError, "low_confidence"),
        ({"min_agreement": 2}, InputError, "min_agreement"),
        ({"weights": {"typo": 1.0}}, InputError, r"unknown reason\(s\) \['typo'\]"),
        ({"weights": {"lf_conflict": -1}}, InputError, "must be a number >= 0"),
        ({"model_predictions": pl.DataFrame({"asset_id": ["a"]})}, MissingColumnError, "label"),
        (
            {"model_predictions": pl.DataFrame({"asset_id": ["a", "a"], "label": [0, 1]})},
            InputError,
            r"\['a'\] more than once",
        ),
        (
            {"annotations_agreement": pl.DataFrame({"asset_id": ["a"], "agreement": [1.5]})},
            InputError,
            "agreement 1.5 for asset 'a'",
        ),
        (
            {"annotations_agreement": pl.DataFrame({"asset_id": ["a"]})},
            MissingColumnError,
            "agreement",
        ),
        ({"candidates": pl.DataFrame({"id": ["a"]})}, MissingColumnError, "asset_id"),
        (
            {"model_predictions": pl.DataFrame({"asset_id": ["a"], "label": ["SPAM"]})},
            InputError,
            "put class names in a 'label_name' column",
        ),
        ({"candidates": pl.DataFrame({"asset_id": [1.5]})}, InputError, "not converted"),
        ({"exclude": [1, 2]}, InputError, "cast them"),
        ({"exclude": "a"}, InputError, "not the string 'a'"),
        (
            {"purpose": "fix"},
            InputError,
            r"purpose must be one of \['correct', 'refit'\], got 'fix'",
        ),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        review_queue(enriched(), **kwargs)


def test_bad_enriched_tables_are_refused():
    with pytest.raises(MissingColumnError, match="'confidence'"):
        review_queue(enriched().drop("confidence"))
    with pytest.raises(InputError, match=r"\['a'\] more than once"):
        review_queue(pl.concat([enriched(), enriched().head(1)]))
    with pytest.raises(InputError, match="values in \\[0, 1\\]"):
        review_queue(enriched().with_columns(pl.lit(1.2).alias("confidence")))


# -- real data -------------------------------------------------------------------------------
def youtube_table() -> pl.DataFrame:
    """WRENCH youtube train votes as an enriched table (majority-vote labels)."""
    path = SHARED / "wrench" / "youtube" / "train.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    records = json.loads(path.read_text())
    L = np.array([r["weak_labels"] for r in records.values()])
    counts = np.stack([(c == L).sum(axis=1) for c in range(2)], axis=1).astype(float)
    proba = np.where(counts.sum(1, keepdims=True) > 0, counts, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    label = proba.argmax(axis=1)
    voted = L != -1
    return pl.DataFrame(
        {
            "asset_id": list(records),
            "label": label,
            "confidence": proba.max(axis=1),
            "conflict": ((label[:, None] != L) & voted).any(axis=1),
            "all_abstain": ~voted.any(axis=1),
            **{f"vote_lf{j}": L[:, j] for j in range(L.shape[1])},
        }
    )


def test_wrench_youtube_queue_is_consistent_with_its_inputs():
    table = youtube_table()
    gold_ids = table["asset_id"].head(100).to_list()
    queue = review_queue(table, batch_size=200, exclude=gold_ids)
    picked = queue.table.join(table, on="asset_id", how="left", suffix="_in")
    assert picked.height == 200 and picked["asset_id"].is_unique().all()
    assert not picked["asset_id"].is_in(gold_ids).any()
    for row in picked.iter_rows(named=True):
        assert ("low_confidence" in row["reasons"]) == (row["confidence"] < 0.7)
        assert ("lf_conflict" in row["reasons"]) == row["conflict"]
        assert ("no_lf_votes" in row["reasons"]) == row["all_abstain"]
        assert set(row["reasons"]) <= set(REASONS)
    scores = picked["score"].to_list()
    assert scores == sorted(scores, reverse=True)
    eligible = table.filter(
        (pl.col("confidence") < 0.7) | pl.col("conflict") | pl.col("all_abstain")
    ).filter(~pl.col("asset_id").is_in(gold_ids))
    assert queue.n_eligible == eligible.height


def test_reads_the_enriched_table_that_enriched_table_writes():
    pytest.importorskip("enrich.models.output", reason="enrich.label_output is not written yet")
    from enrich.models.output import enriched_table
    from enrich.votes import VoteMatrix

    votes = np.array([[1, 1], [0, 1], [-1, -1], [0, 0]], dtype=np.int32)
    vm = VoteMatrix(
        votes=votes,
        lf_names=("a", "b"),
        asset_ids=pl.Series(["w", "x", "y", "z"]),
        class_names=("HAM", "SPAM"),
    )
    proba = np.array([[0.1, 0.9], [0.5, 0.5], [0.6, 0.4], [0.95, 0.05]])
    table = enriched_table(vm, proba, run_id="r1", model_version="m1")
    queue = review_queue(table)
    # Every asset the enriched table flags for review is eligible, and nothing else.
    assert queue.n_eligible == int(table["needs_review"].sum())
    assert set(queue.asset_ids) == set(table.filter("needs_review")["asset_id"])
    x = queue.table.filter(pl.col("asset_id") == "x").row(0, named=True)
    assert x["reasons"] == ["low_confidence", "lf_conflict"]  # confidence 0.5, votes 0 and 1
    assert x["label_name"] == table.filter(pl.col("asset_id") == "x")["label_name"].item()


def test_wrench_youtube_refit_batch_follows_the_allocation_rule():
    table = youtube_table()
    votes = [c for c in table.columns if c.startswith("vote_")]
    reviewed = table.filter(pl.col("conflict"))["asset_id"].head(30).to_list()
    queue = review_queue(table, batch_size=50, exclude=reviewed, purpose="refit")
    picked = queue.table.join(table.select("asset_id", *votes), on="asset_id", how="left")
    reasons = picked["reasons"].to_list()
    assert picked.height == 50 and all({"lf_conflict", "no_lf_votes"} & set(r) for r in reasons)
    assert any("no_lf_votes" in r for r in reasons)  # the unvoted assets are a pattern too
    # Recompute every priority from the table: n assets and r reviewed share the pattern;
    # the k-th pick of a pattern (1-based) has priority score * n / sqrt((r + k)(r + k + 1)).
    size = table.group_by(votes).agg(
        pl.len().alias("n"), pl.col("asset_id").is_in(reviewed).sum().alias("r")
    )
    picked = picked.join(size, on=votes, how="left", maintain_order="left").with_columns(
        (pl.int_range(pl.len()).over(votes) + 1).alias("k")
    )
    rk = pl.col("r") + pl.col("k")
    priority = picked.select(pl.col("score") * pl.col("n") / (rk * (rk + 1)).sqrt())
    assert priority.to_series().diff().drop_nulls().max() <= 1e-9  # picked best first
    assert picked.group_by(votes).len().height > 1  # not one pattern's ties
    # No pattern's next pick (if it has eligible assets left) beats the last pick.
    scores = review_queue(table, batch_size=2000, exclude=reviewed, purpose="refit").table
    left = (
        scores.filter(~pl.col("asset_id").is_in(picked["asset_id"].implode()))
        .join(table.select("asset_id", *votes), on="asset_id")
        .group_by(votes)
        .agg(pl.col("score").max())
        .join(size, on=votes)
        .join(picked.group_by(votes).agg(pl.col("k").max()), on=votes, how="left")
        .with_columns(pl.col("k").fill_null(0) + 1)
    )
    next_best = left.select(pl.col("score") * pl.col("n") / (rk * (rk + 1)).sqrt()).max().item()
    assert next_best <= priority.to_series().min() + 1e-9


def test_refit_on_part_of_the_table_allocates_by_the_whole_tables_pattern_counts():
    table = youtube_table()
    votes = [c for c in table.columns if c.startswith("vote_")]
    reviewed = table.filter(pl.col("conflict"))["asset_id"].head(30).to_list()
    whole = review_queue(table, batch_size=50, exclude=reviewed, purpose="refit")
    # a partitioned run's candidates: at most 50 unreviewed assets of each pattern
    part = table.filter(~pl.col("asset_id").is_in(reviewed)).filter(
        pl.int_range(pl.len()).over(votes) < 50
    )
    counts = table.group_by(votes).agg(
        pl.len().alias("n_assets"), pl.col("asset_id").is_in(reviewed).sum().alias("n_reviewed")
    )
    sized = review_queue(part, batch_size=50, purpose="refit", pattern_counts=counts)
    unsized = review_queue(part, batch_size=50, purpose="refit")

    def allocation(queue):
        return sorted(queue.table["why"].str.extract(r"(from a vote pattern of .*)$").to_list())

    assert part.height < table.height - len(reviewed)
    assert allocation(sized) == allocation(whole)
    assert allocation(unsized) != allocation(whole)
    with pytest.raises(InputError, match=r"pattern_counts lacks \['n_reviewed'\]"):
        review_queue(part, purpose="refit", pattern_counts=counts.drop("n_reviewed"))


def test_refit_on_part_of_the_table_reads_the_reviewed_classes_from_the_counts():
    table = youtube_table()
    votes = [c for c in table.columns if c.startswith("vote_")]
    table = table.with_columns(
        pl.when(pl.col("label") == 0)
        .then(pl.col("confidence"))
        .otherwise(1 - pl.col("confidence"))
        .alias("proba_0")
    ).with_columns((1 - pl.col("proba_0")).alias("proba_1"))
    unvoted = table.filter(pl.col("all_abstain"))["asset_id"]
    # 12 reviewed assets without votes, all of the class the model gives them
    gold = pl.DataFrame({"asset_id": unvoted.head(12), "label": [0] * 12})
    whole = review_queue(table, batch_size=40, purpose="refit", gold=gold)
    part = table.filter(~pl.col("asset_id").is_in(gold["asset_id"].implode())).filter(
        pl.int_range(pl.len()).over(votes) < 40
    )
    labelled = table.join(gold, on="asset_id", how="left", suffix="_gold").with_columns(
        pl.col("label_gold").fill_null(-1)
    )
    counts = labelled.group_by(*votes, pl.col("label_gold").alias("label")).agg(
        pl.len().alias("n_assets"), (pl.col("label_gold") >= 0).sum().alias("n_reviewed")
    )
    sized = review_queue(part, batch_size=40, purpose="refit", pattern_counts=counts)
    assert sorted(sized.table["why"].to_list()) == sorted(whole.table["why"].to_list())
    # without the labels in the counts, the assets without votes keep their picks
    blind = review_queue(part, batch_size=40, purpose="refit", pattern_counts=counts.drop("label"))

    def n_unvoted(queue):
        return int(queue.table["reasons"].list.contains("no_lf_votes").sum())

    assert n_unvoted(sized) < n_unvoted(blind)


def test_ties_spread_over_slices_instead_of_by_asset_id():
    # 60 assets tied on one score; ids put every "amazon" asset first
    n = 60
    table = pl.DataFrame(
        {
            "asset_id": [f"{'amazon' if i < 40 else 'yelp'}-{i:03d}" for i in range(n)],
            "label": [1] * n,
            "confidence": [0.5] * n,
            "conflict": [False] * n,
            "source": ["amazon"] * 40 + ["yelp"] * 20,
        }
    )
    spread = review_queue(table, batch_size=10, slices=["source"], random_state=3)
    sources = spread.table.join(table, on="asset_id")["source"].to_list()
    assert sources.count("amazon") == 5 and sources.count("yelp") == 5
    plain = review_queue(table, batch_size=10, random_state=3)
    assert 0 < plain.table.join(table, on="asset_id")["source"].to_list().count("yelp") < 10
    with pytest.raises(MissingColumnError, match="video"):
        review_queue(table, slices=["video"])


def test_refit_always_fills_the_batch_when_assets_are_left():
    table = patterned()
    queue = review_queue(table, batch_size=7, purpose="refit")
    assert len(queue) == 7 and queue.n_topped_up == 1
    # nothing left to add: the batch is what remains
    queue = review_queue(table, batch_size=20, purpose="refit", exclude=["a1", "a2"])
    assert len(queue) == 5 and set(queue.asset_ids) == {"a3", "a4", "b1", "b2", "c1"}


def test_queue_from_votes_takes_the_vote_matrix_and_probabilities_directly():
    L = np.array([[0, 1], [0, 1], [0, 1], [1, 0], [1, 1], [0, -1], [-1, -1]])
    P = np.array([[0.5, 0.5]] * 4 + [[0.1, 0.9], [0.8, 0.2], [0.6, 0.4]])
    queue = queue_from_votes(L, P, batch_size=5)
    rows = queue.asset_ids.to_list()  # row numbers of L
    assert len(rows) == 5 and len(set(rows)) == 5
    assert set(rows[:3]) <= {0, 1, 2, 3}  # the conflicts first
    assert rows[-1] == 6 or 6 not in rows  # the all-abstain row only ever last
    again = queue_from_votes(L, P, batch_size=5, exclude=rows[:2])
    assert not set(again.asset_ids.to_list()) & set(rows[:2])
    named = queue_from_votes(L, P, batch_size=2, asset_ids=list("abcdefg"), lf_names=["x", "y"])
    assert set(named.asset_ids.to_list()) <= set("abcd")
    with pytest.raises(InputError, match="probabilities must be"):
        queue_from_votes(L, P[:3])
    with pytest.raises(InputError, match="votes must be class ids"):
        queue_from_votes(L + 5, P)
