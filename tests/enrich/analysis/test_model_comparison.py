"""compare_models: the label model and the end model side by side, per class and per slice."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from enrich.analysis.gold import benchmark
from enrich.analysis.model_comparison import compare_models
from enrich.analysis.slices import slice_report, wilson_interval
from enrich.errors import InputError


@pytest.fixture(scope="module")
def two_models():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 400)
    gold[:20] = -1
    label_model = np.where(rng.random(400) < 0.75, gold.clip(0), 1 - gold.clip(0))
    end = np.where(rng.random(400) < 0.9, gold.clip(0), 1 - gold.clip(0))
    end_proba = np.column_stack([1 - end * 0.8 - 0.1, end * 0.8 + 0.1])
    frame = pl.DataFrame({"video": rng.choice(["a", "b", "c"], 400)})
    return gold, label_model, end_proba, frame


def test_figures_match_benchmark_and_slice_report_run_one_by_one(two_models):
    gold, label_model, end_proba, frame = two_models
    result = compare_models(
        gold,
        {"label model": label_model, "end model": end_proba},
        class_names=["HAM", "SPAM"],
        frame=frame,
        slices=["video"],
    )
    direct = benchmark(gold, proba=end_proba, class_names=["HAM", "SPAM"])
    row = result.overall.filter(pl.col("model") == "end model").row(0, named=True)
    assert row["accuracy"] == direct.accuracy and row["n"] == 380
    assert row["ece"] == direct.ece and row["macro_f1"] == direct.macro["f1"]
    low, high = wilson_interval(round(direct.accuracy * 380), 380)
    assert row["ci_low"] == pytest.approx(low) and row["ci_high"] == pytest.approx(high)
    assert result.overall["model"].to_list() == ["label model", "end model"]
    assert result.overall.filter(pl.col("model") == "label model")["ece"].to_list() == [None]

    per_class = result.per_class.filter(pl.col("model") == "end model")
    assert per_class["recall"].to_list() == direct.per_class["recall"].to_list()
    assert (per_class["recall_ci_low"] <= per_class["recall"]).all()
    assert (per_class["recall"] <= per_class["recall_ci_high"]).all()

    known = gold >= 0
    correct = pl.Series(label_model == gold).set(pl.Series(~known), None)
    alone = slice_report(frame.with_columns(correct.alias("ok")), correct="ok", slices=["video"])
    mine = result.slices.filter(pl.col("model") == "label model").drop("model").sort("slice")
    assert mine.equals(alone.table.sort("slice"))
    assert result.slices.height == 6 and set(result.slice_reports) == {"label model", "end model"}


def test_agreement_with_the_label_model_needs_no_gold(two_models):
    _, label_model, end_proba, _ = two_models
    reference = label_model.copy()
    reference[:50] = -1  # no LF voted on these
    result = compare_models(reference, {"end model": end_proba})
    agreement = float((end_proba.argmax(1) == label_model)[50:].mean())
    assert result.overall["accuracy"].to_list() == [agreement]


def test_bad_input_is_refused(two_models):
    gold, label_model, _, frame = two_models
    with pytest.raises(InputError, match="non-empty mapping"):
        compare_models(gold, {})
    with pytest.raises(InputError, match="gives 10 rows"):
        compare_models(gold, {"m": label_model[:10]})
    with pytest.raises(InputError, match="slices need frame"):
        compare_models(gold, {"m": label_model}, slices=["video"])
    with pytest.raises(InputError, match="frame has 3 rows"):
        compare_models(gold, {"m": label_model}, frame=frame.head(3), slices=["video"])
