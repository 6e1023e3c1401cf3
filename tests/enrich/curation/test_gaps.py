"""find_gaps(): exact gap rows on hand-made labels, quality vs gold and model, real YouTube data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from enrich.analysis.slices import wilson_interval
from enrich.curation.gaps import Gaps, find_gaps, find_gaps_from_counts
from enrich.datasets import load_youtube_spam
from enrich.errors import InputError, MissingColumnError

ROW = ("gap", "kind", "column", "value", "size", "metric", "value_measured", "target", "deficit")


def hand_labels() -> pl.DataFrame:
    """12 assets: 7 HAM (6 confident), 3 SPAM (1 confident), 2 unlabeled; videos Psy / Katy."""
    return pl.DataFrame(
        {
            "asset_id": [f"a{i:02d}" for i in range(12)],
            "label_name": ["HAM"] * 7 + ["SPAM"] * 3 + [None, None],
            "confidence": [0.95] * 6 + [0.5] + [0.9, 0.6, 0.5] + [None, None],
            "video": ["Psy"] * 5 + ["Katy"] * 5 + ["Psy", None],
        }
    )


def test_too_few_confident_labels_exact_rows():
    gaps = find_gaps(
        hand_labels(), slices=["video"], classes=["HAM", "SPAM", "OTHER"], min_confident=5
    )
    # largest deficit first; ties by kind, then gap id
    assert gaps.table.select(ROW).rows() == [
        ("class=OTHER", "class", "class", "OTHER", 0, "confident labels", 0.0, 5.0, 5),
        ("video=null", "slice", "video", None, 1, "confident labels", 0.0, 5.0, 5),
        ("class=SPAM", "class", "class", "SPAM", 3, "confident labels", 1.0, 5.0, 4),
        ("video=Katy", "slice", "video", "Katy", 5, "confident labels", 2.0, 5.0, 3),
    ]
    # HAM (6 of 7 confident) and Psy (5 confident of 6 assets, one unlabeled) are fine
    ok = gaps.measured.filter(pl.col("status") == "ok")
    assert ok.select("gap", "size", "value_measured").rows() == [
        ("class=HAM", 7, 6.0),
        ("video=Psy", 6, 5.0),
    ]
    assert gaps.table["reason"][2] == "1 of 3 assets labeled SPAM have confidence >= 0.8; 5 wanted."
    assert gaps.table["reason"][3] == (
        "2 of 5 assets in video=Katy have a label with confidence >= 0.8; 5 wanted."
    )
    assert gaps.gap_ids == ["class=OTHER", "video=null", "class=SPAM", "video=Katy"]
    assert len(gaps) == 4
    assert gaps.too_small.height == 0


def test_confident_share_raises_the_target():
    labels = hand_labels()
    gaps = find_gaps(labels, slices=["video"], min_confident=1, min_confident_share=0.9)
    rows = {r[0]: r[6:] for r in gaps.table.select(ROW).rows()}
    # HAM: 6 of 7 confident, target ceil(0.9 * 7) = 7 -> deficit 1
    assert rows["class=HAM"] == (6.0, 7.0, 1)
    # Psy: 5 confident of 6 assets (one unlabeled), target ceil(5.4) = 6
    assert rows["video=Psy"] == (5.0, 6.0, 1)
    assert rows["class=SPAM"] == (1.0, 3.0, 2)


def test_zero_min_confident_turns_the_count_rule_off():
    gaps = find_gaps(hand_labels(), min_confident=0)
    assert gaps.measured.height == 0
    assert len(gaps) == 0
    assert "0 of 0" in str(gaps)


def test_integer_labels_are_read_through_classes_and_minus_one_is_unlabeled():
    labels = pl.DataFrame(
        {"asset_id": [1, 2, 3, 4], "label": [0, 1, -1, 1], "confidence": [0.9, 0.9, 0.2, 0.85]}
    )
    gaps = find_gaps(labels, classes=["HAM", "SPAM"], min_confident=2)
    assert gaps.table.select("gap", "size", "value_measured").rows() == [("class=HAM", 1, 1.0)]
    assert sorted(gaps.labeled_ids.to_list()) == [1, 2, 4]
    # without names the ids are the class names
    plain = find_gaps(labels, min_confident=2)
    assert plain.classes == ("0", "1")
    assert plain.gap_ids == ["class=0"]


def test_quality_vs_gold_exact_f1_accuracy_and_wilson_interval():
    ids = [f"g{i}" for i in range(10)]
    labels = pl.DataFrame(
        {
            "asset_id": ids,
            "label_name": ["HAM"] * 6 + ["SPAM"] * 4,
            "confidence": [0.9] * 10,
            "video": ["Psy"] * 5 + ["Katy"] * 5,
        }
    )
    # gold: g0-g3 HAM, g4-g7 SPAM, g8-g9 SPAM -> labels wrong on g4, g5 (HAM vs SPAM gold)
    gold = pl.DataFrame({"asset_id": ids, "label_name": ["HAM"] * 4 + ["SPAM"] * 6})
    gaps = find_gaps(
        labels, slices=["video"], gold=gold, min_confident=0, min_quality=0.9, min_size=3
    )
    rows = {(r["gap"], r["metric"]): r for r in gaps.measured.iter_rows(named=True)}
    # HAM: tp 4, fp 2, fn 0 -> F1 8/10; SPAM: tp 4, fp 0, fn 2 -> F1 8/10
    ham = rows[("class=HAM", "label F1 vs gold")]
    assert ham["value_measured"] == pytest.approx(0.8)
    assert ham["status"] == "gap"
    assert ham["n_judged"] == 4
    # deficit ceil((0.9 - 0.8) * max(size 6, judged 4)) = 1
    assert ham["deficit"] == 1
    assert ham["ci_low"] is None
    # Psy: g0-g4, g4 wrong -> 4/5; Katy: g5 wrong -> 4/5
    psy = rows[("video=Psy", "label accuracy vs gold")]
    assert psy["value_measured"] == pytest.approx(0.8)
    low, high = wilson_interval(4, 5)
    assert (psy["ci_low"], psy["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert psy["reason"].startswith("label accuracy vs gold is 0.800 on 5 gold-labeled assets")
    assert set(gaps.gap_ids) == {"class=HAM", "class=SPAM", "video=Psy", "video=Katy"}
    assert gaps.too_small.height == 0


def test_groups_too_small_to_judge_are_listed_not_judged():
    labels = hand_labels()
    gold = pl.DataFrame({"asset_id": ["a00", "a01", "a07"], "label_name": ["SPAM"] * 3})
    gaps = find_gaps(labels, slices=["video"], gold=gold, min_confident=0, min_size=3)
    # SPAM has 3 gold assets (judged: labels call them HAM, HAM, SPAM -> F1 0.5)
    assert gaps.table.select("gap", "metric", "value_measured").rows() == [
        ("class=SPAM", "label F1 vs gold", 0.5)
    ]
    small = gaps.too_small.select("gap", "metric", "n_judged").rows()
    assert ("class=HAM", "label F1 vs gold", 0) in small
    assert ("video=Psy", "label accuracy vs gold", 2) in small
    assert ("video=Katy", "label accuracy vs gold", 1) in small
    reason = gaps.too_small.filter(pl.col("gap") == "video=Psy")["reason"][0]
    assert (
        reason
        == "only 2 gold-labeled assets in video=Psy; 3 needed to judge label accuracy vs gold."
    )
    assert "too small to judge" in str(gaps)


def test_predictions_without_gold_score_agreement_and_with_gold_score_the_model():
    labels = pl.DataFrame(
        {"asset_id": ["a", "b", "c", "d"], "label": ["x", "x", "y", "y"], "confidence": [1.0] * 4}
    )
    model = pl.DataFrame({"asset_id": ["a", "b", "c", "d"], "label": ["x", "y", "y", "y"]})
    agreement = find_gaps(labels, predictions=model, min_confident=0, min_size=1)
    assert set(agreement.measured["metric"].to_list()) == {"label F1 vs model"}
    # x vs model: tp 1 (a), fp 1 (b), fn 0 -> 2/3
    assert agreement.table.select("gap", "value_measured").rows() == [
        ("class=x", pytest.approx(2 / 3))
    ]
    gold = pl.DataFrame({"asset_id": ["a", "b", "c", "d"], "label": ["x", "x", "y", "x"]})
    both = find_gaps(labels, gold=gold, predictions=model, min_confident=0, min_size=1)
    assert set(both.measured["metric"].to_list()) == {"label F1 vs gold", "model recall vs gold"}
    model_x = both.measured.filter(
        (pl.col("gap") == "class=x") & (pl.col("metric") == "model recall vs gold")
    )
    # model on gold x (a, b, d): predicts x, y, y -> recall 1 / 3
    assert model_x["value_measured"][0] == pytest.approx(1 / 3)


def test_gold_rows_for_unknown_assets_are_ignored_and_id_types_may_differ():
    labels = pl.DataFrame({"asset_id": [1, 2], "label": ["x", "y"], "confidence": [1.0, 1.0]})
    gold = pl.DataFrame({"asset_id": ["1", "2", "99"], "label": ["x", "x", "y"]})
    gaps = find_gaps(labels, gold=gold, min_confident=0, min_size=1)
    x = gaps.measured.filter(pl.col("gap") == "class=x")
    assert x["n_judged"][0] == 2  # asset 99 is not in the labels table


def test_examples_prefer_confident_or_gold_assets_and_carry_index_ids():
    labels = hand_labels().with_columns(pl.int_range(100, 112, dtype=pl.Int64).alias("index_id"))
    gaps = find_gaps(labels, slices=["video"], min_confident=5)
    examples = gaps.examples
    assert examples.columns == ["gap", "asset_id", "index_id"]
    by_gap = {g: sorted(f["asset_id"].to_list()) for (g,), f in examples.group_by("gap")}
    assert by_gap["class=SPAM"] == ["a07"]  # the one confident SPAM label
    assert by_gap["video=Katy"] == ["a05", "a07"]  # confident labels in Katy
    assert "video=null" not in by_gap  # its only asset is unlabeled
    assert "class=OTHER" not in by_gap
    weak = hand_labels().with_columns(pl.lit(0.5).alias("confidence"))
    fallback = find_gaps(weak, min_confident=5)
    spam = fallback.examples.filter(pl.col("gap") == "class=SPAM")["asset_id"].to_list()
    assert spam == ["a07", "a08", "a09"]  # no confident SPAM: every SPAM label serves


def test_gold_assets_count_as_labeled_and_as_examples():
    labels = hand_labels()
    gold = pl.DataFrame({"asset_id": ["a10"], "label_name": ["SPAM"]})
    gaps = find_gaps(labels, gold=gold, min_confident=5, min_size=1)
    assert "a10" in gaps.labeled_ids.to_list()
    spam = gaps.examples.filter(pl.col("gap") == "class=SPAM")["asset_id"].to_list()
    assert sorted(spam) == ["a07", "a10"]


def test_pandas_input_and_display():
    gaps = find_gaps(hand_labels().to_pandas(), slices=["video"], min_confident=5)
    assert isinstance(gaps, Gaps)
    text = str(gaps)
    assert text.startswith("Gaps: 3 of 5 classes and slices fall short")
    assert "class=SPAM" in text and "total deficit: 12" in text
    assert "<table" in gaps._repr_html_()
    assert isinstance(gaps.to_pandas(), pd.DataFrame)
    assert gaps.settings["min_confident"] == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confident_above": 0}, "confident_above must be in (0, 1]"),
        ({"min_confident": -1}, "min_confident must be a whole number >= 0"),
        ({"min_confident": 2.5}, "min_confident must be a whole number"),
        ({"min_confident_share": 1.5}, "min_confident_share must be in [0, 1]"),
        ({"min_quality": 0}, "min_quality must be in (0, 1]"),
        ({"min_size": 0}, "min_size must be a whole number >= 1"),
        ({"slices": "video"}, "slices=['video']"),
        ({"slices": ["video", "video"]}, "slice columns repeat"),
        ({"classes": ["HAM"]}, "label 'SPAM' is not one of the classes ['HAM']"),
        ({"classes": "HAM"}, "classes must be a non-empty list"),
    ],
)
def test_bad_options_are_refused_with_the_value(kwargs, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(")):
        find_gaps(hand_labels(), **kwargs)


def test_bad_tables_are_refused():
    labels = hand_labels()
    with pytest.raises(MissingColumnError, match="'label' or 'label_name'"):
        find_gaps(labels.drop("label_name"))
    with pytest.raises(MissingColumnError, match="'region'"):
        find_gaps(labels, slices=["region"])
    with pytest.raises(InputError, match=r"lists asset id\(s\) \['a00'\] more than once"):
        find_gaps(pl.concat([labels, labels.head(1)]))
    with pytest.raises(InputError, match=r"must lie in \[0, 1\]; got values from 0.5 to 1.5"):
        find_gaps(labels.with_columns(pl.col("confidence") + 0.55 * (pl.col("confidence") > 0.9)))
    with pytest.raises(InputError, match="may not be called 'class'"):
        find_gaps(labels.rename({"video": "class"}), slices=["class"])
    with pytest.raises(MissingColumnError, match="gold table has no 'asset_id'"):
        find_gaps(labels, gold=pl.DataFrame({"label": ["HAM"]}))
    with pytest.raises(InputError, match="gold table lists asset"):
        find_gaps(labels, gold=pl.DataFrame({"asset_id": ["a", "a"], "label": ["HAM", "HAM"]}))
    with pytest.raises(InputError, match=r"label 3 is not a class id 0\.\.1"):
        find_gaps(
            pl.DataFrame({"asset_id": [1], "label": [3], "confidence": [1.0]}),
            classes=["HAM", "SPAM"],
        )


def test_real_youtube_labels_find_the_weak_video_against_gold():
    """A crude keyword labeler on the bundled comments, judged against their gold labels."""
    data = load_youtube_spam()
    spammy = pl.col("text").str.to_lowercase().str.contains("check|subscribe|channel|http")
    labels = data.select(
        "asset_id",
        "video",
        pl.when(spammy).then(pl.lit("SPAM")).otherwise(pl.lit("HAM")).alias("label_name"),
        pl.when(spammy).then(0.9).otherwise(0.6).alias("confidence"),
    )
    gold = data.select(
        "asset_id", pl.col("label").replace_strict({0: "HAM", 1: "SPAM"}).alias("label_name")
    )
    gaps = find_gaps(labels, slices=["video"], gold=gold, min_confident=400, min_quality=0.8)
    table = gaps.measured
    assert table.height == 2 * 7  # (2 classes + 5 videos) x (count, label quality)
    accuracy = table.filter(pl.col("metric") == "label accuracy vs gold")
    # every video judged on all its comments; the measured accuracy matches a direct count
    joined = labels.join(gold, on="asset_id", suffix="_gold")
    for video, value, n in accuracy.select("value", "value_measured", "n_judged").rows():
        part = joined.filter(pl.col("video") == video)
        assert n == part.height
        expected = (part["label_name"] == part["label_name_gold"]).mean()
        assert value == pytest.approx(expected)
    # HAM labels are never confident here, so HAM is a count gap with every label unconfident
    ham = gaps.table.filter(
        (pl.col("gap") == "class=HAM") & (pl.col("metric") == "confident labels")
    )
    assert ham["value_measured"][0] == 0.0
    assert ham["deficit"][0] == 400
    assert all(math.isfinite(v) for v in accuracy["value_measured"].to_list())


# -- natural inputs (issue 16) --------------------------------------------------------------
def test_unlabeled_rows_are_unknown_not_wrong():
    # 6 labeled assets of video A (5 right), 94 unlabeled ones: accuracy 5/6, not 5/100
    n = 100
    labels = pl.DataFrame(
        {
            "asset_id": list(range(n)),
            "label_name": ["HAM"] * 5 + ["SPAM"] + [None] * (n - 6),
            "video": ["A"] * n,
        }
    )
    gold = pl.DataFrame({"asset_id": list(range(n)), "label_name": ["HAM"] * 6 + ["SPAM"] * 94})
    gaps = find_gaps(labels, slices=["video"], gold=gold, min_confident=0, min_size=5)
    row = gaps.measured.filter(pl.col("gap") == "video=A").row(0, named=True)
    assert row["metric"] == "label accuracy vs gold"
    assert row["value_measured"] == pytest.approx(5 / 6) and row["n_judged"] == 6


def test_confident_label_targets_scale_with_the_data():
    def labels(scale: int) -> pl.DataFrame:
        names = ["a"] * (40 * scale) + ["b"] * (40 * scale) + ["c"] * (4 * scale)
        return pl.DataFrame({"asset_id": list(range(len(names))), "label_name": names})

    for scale in (1, 10):
        gaps = find_gaps(labels(scale))  # no confidence column: hand labels, all confident
        assert gaps.gap_ids == ["class=c"]
        assert gaps.table["target"][0] == 20 * scale
        assert gaps.settings["min_confident"] is None
    # a fixed count still works
    assert set(find_gaps(labels(1), min_confident=41).gap_ids) == {"class=a", "class=b", "class=c"}


def test_predictions_as_probabilities_or_class_ids():
    labels = pl.DataFrame(
        {"asset_id": ["a", "b", "c", "d"], "label": [0, 1, 1, None], "confidence": 0.9}
    )
    proba = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]]
    by_proba = find_gaps(
        labels, classes=["HAM", "SPAM"], predictions=np.array(proba), min_confident=0, min_size=1
    )
    by_ids = find_gaps(
        labels,
        classes=["HAM", "SPAM"],
        predictions=np.array([0, 1, 0, 1]),
        min_confident=0,
        min_size=1,
    )
    assert by_proba.measured.equals(by_ids.measured)
    # the unlabeled row d is not counted against the labels
    assert by_proba.measured["n_judged"].to_list() == [2, 1]
    with pytest.raises(InputError, match="one row per row"):
        find_gaps(labels, classes=["HAM", "SPAM"], predictions=np.zeros((3, 2)))
    with pytest.raises(InputError, match="classes="):
        find_gaps(labels, predictions=np.zeros((4, 2)))


# -- find_gaps_from_counts: the same gaps from counts of assets ----------------------------
def _random_assets(seed: int, n: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Labels (some unlabeled, coarse confidences), sparse gold and model predictions."""
    rng = np.random.default_rng(seed)
    label = rng.integers(-1, 3, n)
    labels = pl.DataFrame(
        {
            "asset_id": [f"a{i}" for i in range(n)],
            "label": label,
            "confidence": np.where(label >= 0, rng.choice([0.5, 0.79, 0.8, 0.95], n), np.nan),
            "video": rng.choice(["Psy", "Katy", "Eminem"], n),
            "channel": pl.Series(rng.choice([1, 2, 3, 4], n)).set(
                pl.Series(rng.random(n) < 0.1), None
            ),
        }
    )
    known = rng.random(n) < 0.6
    gold_ids = np.where(rng.random(n) < 0.7, label, rng.integers(0, 3, n))
    gold_ids = np.where(gold_ids < 0, rng.integers(0, 3, n), gold_ids)
    gold = pl.DataFrame({"asset_id": labels["asset_id"].filter(known), "label": gold_ids[known]})
    predictions = pl.DataFrame(
        {"asset_id": labels["asset_id"], "label": np.where(rng.random(n) < 0.8, label, 1)}
    )
    return (
        labels.with_columns(pl.Series("_gold", np.where(known, gold_ids, -1))),
        gold,
        (predictions.with_columns(pl.col("label").alias("_pred"))),
    )


def _counted(labels: pl.DataFrame, predictions: pl.DataFrame, *, parts: int) -> pl.DataFrame:
    """The assets grouped and counted in ``parts`` slices of rows, as partitions would be."""
    frame = labels.with_columns(prediction=predictions["_pred"]).rename({"_gold": "gold"})
    keys = ["label", "confidence", "gold", "prediction", "video", "channel"]
    size = math.ceil(frame.height / parts)
    return pl.concat(
        [
            frame.slice(i * size, size).group_by(keys).agg(pl.len().alias("count"))
            for i in range(parts)
        ]
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_reference", ["gold", "predictions", "both", "none"])
def test_counts_give_the_gaps_of_the_assets(seed, with_reference):
    labels, gold, predictions = _random_assets(seed, 400)
    classes = ["A", "B", "C", "D"]  # D has no asset: the starkest gap, found both ways
    counts = _counted(labels, predictions, parts=3)
    if with_reference in ("predictions", "none"):
        counts = counts.drop("gold")
    if with_reference in ("gold", "none"):
        counts = counts.drop("prediction")
    options = {"slices": ["video", "channel"], "min_size": 15, "min_quality": 0.75}
    for min_confident in (None, 30):
        local = find_gaps(
            labels.drop("_gold"),
            classes=classes,
            gold=gold if with_reference in ("gold", "both") else None,
            predictions=predictions.drop("_pred")
            if with_reference in ("predictions", "both")
            else None,
            min_confident=min_confident,
            min_confident_share=0.1,
            **options,
        )
        counted = find_gaps_from_counts(
            counts, classes=classes, min_confident=min_confident, min_confident_share=0.1, **options
        )
        assert counted.measured.equals(local.measured)
        assert counted.table.equals(local.table)
        assert len(local) > 0
        assert counted.settings == local.settings
        assert counted.examples.height == 0 and counted.labeled_ids.len() == 0


def test_counts_rows_of_no_asset_make_no_group_and_bad_counts_are_refused():
    counts = pl.DataFrame(
        {"label_name": ["HAM", "SPAM", None], "video": ["Psy", "Katy", "Gone"], "count": [4, 2, 0]}
    )
    gaps = find_gaps_from_counts(counts, classes=["HAM", "SPAM"], slices=["video"])
    assert sorted(gaps.measured["gap"].to_list()) == [
        "class=HAM",
        "class=SPAM",
        "video=Katy",
        "video=Psy",
    ]
    with pytest.raises(InputError, match="'count' must be >= 0"):
        find_gaps_from_counts(counts.with_columns(count=pl.lit(-1)), classes=["HAM", "SPAM"])
    with pytest.raises(InputError, match="whole numbers"):
        find_gaps_from_counts(counts.with_columns(count=pl.lit(1.5)), classes=["HAM", "SPAM"])
    with pytest.raises(MissingColumnError, match="count"):
        find_gaps_from_counts(counts.drop("count"), classes=["HAM", "SPAM"])
    with pytest.raises(InputError, match="gold label 'EGGS' is not one of the classes"):
        find_gaps_from_counts(counts.with_columns(gold=pl.lit("EGGS")), classes=["HAM", "SPAM"])


# -- the model judged per class and slice, against its peers --------------------------------
def _one_slice_misses_its_rare_class(seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, list]:
    """Four topics of 60 gold assets; the model is right on three and, on ``sports``, right on
    its common class but calls every one of its few ``b`` assets ``a`` (accuracy 0.9)."""
    rng = np.random.default_rng(seed)
    topics = np.repeat(["news", "music", "games", "sports"], 60)
    gold = np.where(rng.random(240) < 0.5, "a", "b")
    gold[180:] = np.where(np.arange(60) < 54, "a", "b")  # sports: 54 a, 6 b
    predicted = gold.copy()
    predicted[180:] = "a"
    ids = [f"t{i}" for i in range(240)]
    labels = pl.DataFrame({"asset_id": ids, "label_name": gold, "topic": topics})
    return labels, pl.DataFrame({"asset_id": ids, "label_name": gold}), predicted.tolist()


def test_a_slice_whose_rare_class_the_model_misses_is_a_gap_by_macro_f1():
    labels, gold, predicted = _one_slice_misses_its_rare_class()
    codes = np.array([0 if p == "a" else 1 for p in predicted])
    gaps = find_gaps(labels, slices=["topic"], classes=["a", "b"], gold=gold, predictions=codes)
    model = gaps.measured.filter(pl.col("metric") == "model macro F1 vs gold")
    values = dict(zip(model["value"], model["value_measured"], strict=True))
    # sports: F1(a) = 108 / 114, F1(b) = 0 -> macro 0.474, although 54 of 60 are right
    assert values["sports"] == pytest.approx((108 / 114) / 2)
    assert values["news"] == values["music"] == values["games"] == 1.0
    sports = gaps.table.filter(pl.col("gap") == "topic=sports").row(0, named=True)
    assert sports["metric"] == "model macro F1 vs gold"
    assert sports["target"] == 1.0  # the median of the four topics
    assert sports["ci_high"] < 1.0 and sports["deficit"] == math.ceil((1 - values["sports"]) * 60)
    assert "the median of the topic slices judged" in sports["reason"]
    assert gaps.gap_ids == ["topic=sports"]  # the classes are at par with each other
    # the label accuracy of the same slice is perfect: gold labels, judged against themselves
    label_rows = gaps.measured.filter(pl.col("metric") == "label accuracy vs gold")
    assert set(label_rows["value_measured"].to_list()) == {1.0}


def test_a_slice_judged_on_few_assets_is_not_a_gap_when_its_interval_reaches_its_peers():
    labels, gold, predicted = _one_slice_misses_its_rare_class()
    # only 12 sports assets, one b: same miss, but an interval too wide to tell it apart
    keep = pl.Series([i < 180 or 180 <= i < 191 or i == 239 for i in range(240)])
    small = labels.filter(keep)
    codes = np.array([0 if p == "a" else 1 for p, k in zip(predicted, keep, strict=True) if k])
    gaps = find_gaps(
        small, slices=["topic"], classes=["a", "b"], gold=gold, predictions=codes, min_size=10
    )
    sports = gaps.measured.filter(
        (pl.col("gap") == "topic=sports") & (pl.col("metric") == "model macro F1 vs gold")
    ).row(0, named=True)
    assert sports["value_measured"] < 0.5 and sports["status"] == "ok"
    assert sports["ci_high"] >= 1.0


def test_the_model_is_judged_on_gold_assets_only_and_by_a_fixed_threshold_when_given():
    labels, gold, predicted = _one_slice_misses_its_rare_class()
    # the pool sits in the table: no label, no gold, a prediction -- unknown, not wrong
    pool = pl.DataFrame(
        {
            "asset_id": [f"p{i}" for i in range(100)],
            "label_name": [None] * 100,
            "topic": ["news"] * 100,
        },
        schema_overrides={"label_name": pl.String},
    )
    table = pl.concat([labels, pool])
    codes = np.array([0 if p == "a" else 1 for p in predicted] + [1] * 100)
    gaps = find_gaps(table, slices=["topic"], classes=["a", "b"], gold=gold, predictions=codes)
    news = gaps.measured.filter(
        (pl.col("gap") == "topic=news") & (pl.col("metric") == "model macro F1 vs gold")
    ).row(0, named=True)
    assert news["value_measured"] == 1.0 and news["n_judged"] == 60 and news["size"] == 160
    fixed = find_gaps(
        labels,
        slices=["topic"],
        classes=["a", "b"],
        gold=gold,
        predictions=codes[:240],
        min_model_quality=0.3,
    )
    assert not any(m.startswith("model") for m in fixed.table["metric"].to_list())
    assert fixed.settings["min_model_quality"] == 0.3
    with pytest.raises(InputError, match="min_model_quality must be None"):
        find_gaps(labels, gold=gold, predictions=codes[:240], min_model_quality=1.5)


def test_the_model_measures_classes_by_recall_and_judges_them_only_with_a_threshold():
    rng = np.random.default_rng(3)
    gold = np.repeat([0, 1, 2], 80)
    predicted = gold.copy()
    predicted[rng.choice(np.arange(160, 240), 40, replace=False)] = 0  # class c: recall 0.5
    labels = pl.DataFrame({"asset_id": [f"x{i}" for i in range(240)], "label": gold})
    options = {"classes": ["a", "b", "c"], "gold": labels, "predictions": predicted}
    gaps = find_gaps(labels, min_confident=0, **options)
    recall = gaps.measured.filter(pl.col("metric") == "model recall vs gold")
    assert recall.select("value", "value_measured", "status").rows() == [
        ("a", 1.0, "ok"),
        ("b", 1.0, "ok"),
        ("c", 0.5, "ok"),
    ]
    assert len(gaps) == 0  # by default the model's classes are measured, not judged
    assert "only with min_model_quality" in recall["reason"][2]
    assert recall["target"].null_count() == 3
    judged = find_gaps(labels, min_confident=0, min_model_quality=0.7, **options)
    assert judged.gap_ids == ["class=c"]
    assert judged.table.row(0, named=True)["deficit"] == math.ceil((0.7 - 0.5) * 80)


def test_real_youtube_model_per_video_macro_f1_matches_sklearn_and_counts():
    """Out-of-fold predictions of a word-count classifier on the bundled comments."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import cross_val_predict

    data = load_youtube_spam()
    words = CountVectorizer(min_df=3).fit_transform(data["text"].to_list())
    gold_ids = data["label"].to_numpy().astype(np.int64)
    predicted = cross_val_predict(LogisticRegression(max_iter=1000), words, gold_ids, cv=5)
    labels = data.select("asset_id", "video", pl.lit(None, dtype=pl.Int64).alias("label"))
    gold = data.select("asset_id", pl.col("label").cast(pl.Int64))
    options = {"slices": ["video"], "classes": ["HAM", "SPAM"], "min_confident": 0}
    gaps = find_gaps(labels, gold=gold, predictions=predicted, **options)
    model = gaps.measured.filter(pl.col("metric") == "model macro F1 vs gold")
    assert model.height == 5
    videos = data["video"].to_numpy()
    values = model.select("value", "value_measured", "ci_low", "ci_high", "target", "status")
    median = float(np.median(model["value_measured"].to_numpy()))
    for video, value, low, high, target, status in values.rows():
        rows = videos == video
        assert value == pytest.approx(f1_score(gold_ids[rows], predicted[rows], average="macro"))
        assert low <= value <= high and target == pytest.approx(median)
        assert (status == "gap") == (high < median)
    counts = (
        data.select("video", gold=pl.col("label").cast(pl.Int64))
        .with_columns(prediction=pl.Series(predicted), label=pl.lit(None, dtype=pl.Int64))
        .group_by("video", "gold", "prediction", "label")
        .agg(pl.len().alias("count"))
    )
    counted = find_gaps_from_counts(counts, **options)
    assert counted.measured.sort("gap", "metric").equals(gaps.measured.sort("gap", "metric"))
