"""lf_summary agrees with snorkel's LFAnalysis, validates its input, and renders well."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rich.console import Console
from snorkel.labeling import LFAnalysis

import enrich.analysis.summary as summary_module
from enrich._internal.vote_arrays import compress_votes
from enrich.analysis.summary import LFSummary, lf_summary
from enrich.errors import InputError
from enrich.models.label_model import LabelModel
from enrich.votes import VoteMatrix

WRENCH = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "wrench" / "youtube"

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # scipy, inside snorkel


def wrench_split(name: str) -> tuple[np.ndarray, np.ndarray]:
    records = json.loads((WRENCH / f"{name}.json").read_text()).values()
    L = np.array([r["weak_labels"] for r in records], dtype=np.int64)
    Y = np.array([r["label"] for r in records], dtype=np.int64)
    return L, Y


@pytest.fixture(scope="module")
def youtube() -> tuple[np.ndarray, np.ndarray]:
    return wrench_split("train")


def assert_matches_snorkel(table: pl.DataFrame, L: np.ndarray, Y: np.ndarray | None) -> None:
    ref = LFAnalysis(L).lf_summary(Y)
    assert table["polarity"].to_list() == [list(p) for p in ref["Polarity"]]
    for ours, theirs in [("coverage", "Coverage"), ("overlaps", "Overlaps")]:
        np.testing.assert_allclose(table[ours].to_numpy(), ref[theirs].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(table["conflicts"].to_numpy(), ref["Conflicts"], atol=1e-12)
    if Y is not None:
        assert table["correct"].to_list() == ref["Correct"].tolist()
        assert table["incorrect"].to_list() == ref["Incorrect"].tolist()
        # snorkel reports 0 for an LF that never voted; we report null
        accuracy = table["empirical_accuracy"].fill_null(0.0).to_numpy()
        np.testing.assert_allclose(accuracy, ref["Emp. Acc."].to_numpy(), atol=1e-12)


def test_matches_snorkel_on_wrench_youtube(youtube):
    L, Y = youtube
    result = lf_summary(L, Y)
    assert_matches_snorkel(result.table, L, Y)
    analysis = LFAnalysis(L)
    assert result.totals == pytest.approx(
        {
            "n_assets": 1586,
            "n_lfs": 10,
            "n_gold": 1586,
            "coverage": analysis.label_coverage(),
            "overlap": analysis.label_overlap(),
            "conflict": analysis.label_conflict(),
            "mean_lf_coverage": analysis.lf_coverages().mean(),
        }
    )
    assert result.table.columns == [
        "lf",
        "j",
        "polarity",
        "coverage",
        "overlaps",
        "conflicts",
        "correct",
        "incorrect",
        "empirical_accuracy",
    ]


def test_without_gold_matches_snorkel_and_has_no_gold_columns(youtube):
    L, _ = youtube
    result = lf_summary(L)
    assert_matches_snorkel(result.table, L, None)
    assert "correct" not in result.table.columns
    assert "n_gold" not in result.totals


def test_partial_gold_is_scored_on_the_known_rows_only(youtube):
    L, Y = youtube
    gold = Y.copy()
    gold[np.arange(len(gold)) % 3 != 0] = -1  # a third of the rows have gold
    result = lf_summary(L, gold)
    known = gold != -1
    # per-LF gold statistics equal snorkel's on the gold rows alone...
    ref = LFAnalysis(L[known]).lf_summary(Y[known])
    assert result.table["correct"].to_list() == ref["Correct"].tolist()
    assert result.table["incorrect"].to_list() == ref["Incorrect"].tolist()
    np.testing.assert_allclose(result.table["empirical_accuracy"], ref["Emp. Acc."])
    # ...while coverage, overlaps and conflicts still use every row
    assert_matches_snorkel(result.table, L, None)
    assert result.totals["n_gold"] == int(known.sum())


def test_valid_and_test_splits_match_snorkel_with_small_blocks(monkeypatch):
    monkeypatch.setattr(summary_module, "_BLOCK_CELLS", 64)  # many blocks of 6 rows
    for split in ("valid", "test"):
        L, Y = wrench_split(split)
        assert_matches_snorkel(lf_summary(L, Y).table, L, Y)


@st.composite
def vote_matrices(draw):
    n = draw(st.integers(1, 40))
    m = draw(st.integers(1, 6))
    k = draw(st.integers(2, 4))
    L = draw(arrays(np.int64, (n, m), elements=st.integers(-1, k - 1)))
    Y = draw(arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    block = draw(st.sampled_from([1, 5, 1 << 22]))
    return L, Y, block


@settings(max_examples=60, deadline=None)
@given(vote_matrices())
def test_random_matrices_match_snorkel_for_any_block_size(case):
    L, Y, block = case
    saved = summary_module._BLOCK_CELLS
    summary_module._BLOCK_CELLS = block
    try:
        result = lf_summary(L, Y)
    finally:
        summary_module._BLOCK_CELLS = saved
    assert_matches_snorkel(result.table, L, Y)
    analysis = LFAnalysis(L)
    assert result.totals["coverage"] == pytest.approx(analysis.label_coverage())
    assert result.totals["overlap"] == pytest.approx(analysis.label_overlap())
    assert result.totals["conflict"] == pytest.approx(analysis.label_conflict())


@settings(max_examples=30, deadline=None)
@given(vote_matrices())
def test_lf_column_order_does_not_change_per_lf_results(case):
    L, Y, _ = case
    order = np.arange(L.shape[1])[::-1]
    names = [f"f{j}" for j in range(L.shape[1])]
    forward = lf_summary(L, Y, lf_names=names)
    backward = lf_summary(L[:, order], Y, lf_names=[names[j] for j in order])
    assert forward.totals == backward.totals
    assert forward.table.drop("j").equals(backward.table.drop("j").reverse())


def test_many_classes_fall_back_to_per_column_polarity(monkeypatch, youtube):
    L, Y = youtube
    expected = lf_summary(L, Y)
    monkeypatch.setattr(summary_module, "_MAX_CLASS_COUNTERS", 0)
    assert lf_summary(L, Y) == expected


def test_names_come_from_the_vote_matrix_object():
    votes = np.array([[1, -1, 0], [0, 0, -1], [-1, -1, -1]], dtype=np.int32)
    vm = VoteMatrix(
        votes=votes,
        lf_names=("has_url", "short", "caps"),
        asset_ids=pl.Series("asset_id", ["a", "b", "c"]),
        class_names=("HAM", "SPAM"),
    )
    result = lf_summary(vm)
    assert result.table["lf"].to_list() == ["has_url", "short", "caps"]
    assert result.table["polarity"].to_list() == [["HAM", "SPAM"], ["HAM"], ["HAM"]]
    renamed = lf_summary(vm, lf_names=["x", "y", "z"], class_names=["ham", "spam"])
    assert renamed.table["lf"].to_list() == ["x", "y", "z"]
    assert renamed.table["polarity"].to_list()[0] == ["ham", "spam"]
    assert lf_summary(votes).table["lf"].to_list() == ["lf_0", "lf_1", "lf_2"]


def test_accepts_lists_small_ints_and_whole_floats():
    rows = [[0, -1], [1, 1], [-1, -1]]
    expected = lf_summary(np.array(rows, dtype=np.int64), [0, 1, -1])
    assert lf_summary(rows, [0, 1, -1]) == expected
    assert lf_summary(np.array(rows, dtype=np.int8), np.array([0, 1, -1])) == expected
    assert lf_summary(np.array(rows, dtype=float), np.array([[0.0], [1.0], [-1.0]])) == expected
    assert lf_summary(np.asfortranarray(np.array(rows, dtype=np.int16)), [0, 1, -1]) == expected


def test_lf_that_never_votes_or_never_meets_gold():
    L = np.array([[0, -1, 1], [1, -1, -1], [0, -1, -1]])
    gold = np.array([0, 1, -1])
    table = lf_summary(L, gold).table
    assert table["polarity"].to_list() == [[0, 1], [], [1]]
    assert table["coverage"].to_list() == [1.0, 0.0, 1 / 3]
    assert table["empirical_accuracy"].to_list() == [1.0, None, 0.0]
    assert table["correct"].to_list() == [2, 0, 0]
    assert table["incorrect"].to_list() == [0, 0, 1]


def test_empty_matrices():
    no_rows = lf_summary(np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.int64))
    assert no_rows.table["coverage"].to_list() == [0.0, 0.0]
    assert no_rows.totals["n_assets"] == 0 and no_rows.totals["n_gold"] == 0
    no_lfs = lf_summary(np.empty((3, 0), dtype=np.int64))
    assert no_lfs.table.height == 0
    assert no_lfs.totals == {
        "n_assets": 3,
        "n_lfs": 0,
        "coverage": 0.0,
        "overlap": 0.0,
        "conflict": 0.0,
        "mean_lf_coverage": 0.0,
    }


@pytest.mark.parametrize(
    ("L", "kwargs", "message"),
    [
        (np.array([0, 1, -1]), {}, r"must be 2-D .* got 1-D with shape \(3,\)"),
        (np.zeros((2, 2, 2), dtype=int), {}, r"got 3-D with shape \(2, 2, 2\)"),
        (np.array([[0.0, 0.5]]), {}, r"whole numbers .* found np.float64\(0.5\) at index \(0, 1\)"),
        (np.array([[0.0, np.nan]]), {}, r"whole numbers .* found np.float64\(nan\)"),
        (
            np.array([["a", "b"]]),
            {},
            r"must hold integers .* dtype <U1 \(first value np.str_\('a'\)",
        ),
        (np.array([[True, False]]), {}, r"must hold integers .* dtype bool"),
        ([[0, 1], [0]], {}, r"cannot read the vote matrix"),
        (np.array([[0, -1], [-2, 1]]), {}, r"holds -2 at row 1, column 0 \(LF 'lf_0'\)"),
        (np.array([[0, 2]]), {"class_names": ["HAM", "SPAM"]}, r"holds 2 at row 0, column 1"),
        (np.array([[0, 1]]), {"lf_names": ["a"]}, r"lf_names has 1 names .* 2 LF columns"),
        (np.array([[0, 1]]), {"lf_names": ["a", "a"]}, r"lf_names repeats \['a'\]"),
        (np.array([[0, 1]]), {"lf_names": "ab"}, r"not the string 'ab'"),
        (np.array([[0, 1]]), {"class_names": "HAM"}, r"not the string 'HAM'"),
        (np.array([[0, 1]]), {"class_names": []}, r"class_names is empty"),
    ],
)
def test_bad_vote_matrices_are_refused_with_the_reason(L, kwargs, message):
    with pytest.raises(InputError, match=message):
        lf_summary(L, **kwargs)


@pytest.mark.parametrize(
    ("gold", "kwargs", "message"),
    [
        (np.array([0, 1]), {}, r"gold has 2 labels but the vote matrix has 3 rows"),
        (np.zeros((3, 2), dtype=int), {}, r"gold must be 1-D .* shape \(3, 2\)"),
        (np.array([0, -3, 1]), {}, r"gold holds -3 at index 1"),
        (np.array([0, 2, 1]), {"class_names": ["a", "b"]}, r"gold holds 2 .* classes 0..1"),
        (np.array([0, 0.5, 1]), {}, r"gold must hold whole numbers"),
    ],
)
def test_bad_gold_is_refused_with_the_reason(gold, kwargs, message):
    with pytest.raises(InputError, match=message):
        lf_summary(np.array([[0], [1], [-1]]), gold, **kwargs)


class AgreementModel:
    """A small real label model: trusts each LF by how often it agrees with the others.

    ``fit`` learns, per LF, the share of its votes that match the majority vote of the other
    LFs on the same row; ``lf_diagnostics`` reports it the way enrich label models do.
    """

    def __init__(self, *, cardinality: int = 2) -> None:
        self.cardinality = cardinality

    def fit(self, L):
        L = np.asarray(L)
        m = L.shape[1]
        accuracy = np.full(m, np.nan)
        for j in range(m):
            others = np.delete(L, j, axis=1)
            counts = np.stack([(others == c).sum(axis=1) for c in range(self.cardinality)], 1)
            judged = (L[:, j] != -1) & (counts.sum(axis=1) > 0)
            if judged.any():
                accuracy[j] = (counts.argmax(axis=1)[judged] == L[judged, j]).mean()
        self.accuracy_ = accuracy
        self.coverage_ = (L != -1).mean(axis=0)
        self.lf_votes_ = L.T.copy()
        return self

    def lf_diagnostics(self, L) -> pl.DataFrame:
        del L  # everything reported here was learned by fit
        votes = self.lf_votes_
        duplicates = []
        for j, column in enumerate(votes):
            twins = [i for i in range(len(votes)) if i != j and np.array_equal(votes[i], column)]
            duplicates.append(f"lf_{twins[0]}" if twins else None)
        return pl.DataFrame(
            {
                "lf": [f"lf_{j}" for j in range(len(votes))],
                "estimated_accuracy": [None if np.isnan(a) else a for a in self.accuracy_],
                "worse_than_random": [
                    bool(a < 1 / self.cardinality) if not np.isnan(a) else None
                    for a in self.accuracy_
                ],
                "never_fires": (self.coverage_ == 0).tolist(),
                "near_duplicate_of": pl.Series(duplicates, dtype=pl.String),
            }
        )


def test_model_diagnostics_are_appended_in_lf_order(youtube):
    L, Y = youtube
    flipped = np.where(L[:, 5] == -1, -1, 1 - L[:, 5])  # votes against LF 5 each time
    L = np.column_stack([L, L[:, 0], np.full(len(L), -1), flipped])
    names = [f"lf_{j}" for j in range(L.shape[1])]
    model = AgreementModel(cardinality=2).fit(L)
    result = lf_summary(L, Y, lf_names=names, model=model)
    diagnostics = model.lf_diagnostics(L)
    assert result.table.columns[-5:] == [
        "estimated_accuracy",
        "worse_than_random",
        "never_fires",
        "near_duplicate_of",
        "accuracy_mismatch",  # with gold: estimate against the measured interval
    ]
    assert result.table.select(diagnostics.columns[1:]).equals(diagnostics.drop("lf"))
    assert result.table["lf"].to_list() == names
    row = dict(zip(result.table["lf"], result.table["near_duplicate_of"], strict=True))
    assert row["lf_10"] == "lf_0" and row["lf_0"] == "lf_10"
    assert result.table["never_fires"].to_list()[11] is True
    assert result.table["worse_than_random"].to_list()[12] is True
    text = str(result)
    assert "worse than random" in text and "never fires" in text
    page = result._repr_html_()
    assert 'title="worse than random"' in page and 'title="never fires"' in page


def test_distinct_rows_with_their_counts_summarise_like_every_row(youtube):
    L, Y = youtube
    gold = np.where(np.arange(len(Y)) % 3 == 0, Y, -1)  # gold on a third of the rows
    L = np.column_stack([L, L[:, 0]])  # a duplicate LF, for near_duplicate_of
    model = LabelModel(cardinality=2).fit(L)
    every = lf_summary(L, gold, model=model)
    distinct = compress_votes(np.column_stack([L, gold]))
    weighted = lf_summary(
        distinct.patterns[:, :-1],
        distinct.patterns[:, -1],
        model=model,
        sample_weight=distinct.counts,
    )
    assert distinct.n_patterns < len(L) / 2
    assert weighted.table.equals(every.table) and weighted.totals == every.totals
    assert weighted.table["near_duplicate_of"].to_list()[-1] == 0


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        ([1, 2], r"shape \(2,\) but the vote matrix has 3 rows"),
        ([1, -1, 2], "holds -1 at row 1; counts must be whole numbers >= 0"),
        ([1, 0.5, 2], "holds 0.5 at row 1"),
        (["a", "b", "c"], "must hold counts"),
    ],
)
def test_bad_sample_weight_is_refused(weight, message):
    with pytest.raises(InputError, match=message):
        lf_summary([[0, 1], [1, -1], [0, 0]], sample_weight=weight)


def test_bad_model_diagnostics_are_refused(youtube):
    L, _ = youtube
    with pytest.raises(InputError, match="has no lf_diagnostics"):
        lf_summary(L, model=object())
    fitted = AgreementModel().fit(L[:, :4])
    with pytest.raises(InputError, match="returned 4 rows for 10 LFs"):
        lf_summary(L, model=fitted)

    class Clashing(AgreementModel):
        def lf_diagnostics(self, L):
            return super().lf_diagnostics(L).with_columns(pl.lit(0.0).alias("coverage"))

    with pytest.raises(InputError, match=r"columns \['coverage'\] that the summary already has"):
        lf_summary(L, model=Clashing().fit(L))

    class Pandas(AgreementModel):
        def lf_diagnostics(self, L):
            return super().lf_diagnostics(L).to_pandas()

    with pytest.raises(InputError, match="returned DataFrame; expected a polars DataFrame"):
        lf_summary(L, model=Pandas().fit(L))


def test_rendering_in_terminal_and_notebook(youtube):
    L, Y = youtube
    result = lf_summary(L, Y, class_names=("HAM", "SPAM"))
    text = str(result)
    assert repr(result) == text
    assert text.splitlines()[0] == "LF summary: 10 LFs on 1,586 assets, 1,586 with gold"
    assert "coverage: 87.7%" in text and "conflict: 26.5%" in text
    assert "87.0%" in text  # lf_0's accuracy, formatted as a percentage
    console = Console(record=True, width=160, color_system=None)
    console.print(result)
    out = console.export_text()
    assert "empirical_accuracy" in out and "98.5%" in out and "SPAM" in out
    page = result._repr_html_()
    assert "<table" in page and ">19.9%</td>" in page
    assert "title=" not in page  # every accuracy here is above 50%
    weak = lf_summary(L, 1 - Y)  # flipped gold: most LFs now look wrong
    assert 'title="empirical accuracy below 50%"' in weak._repr_html_()
    assert "! empirical accuracy below 50%" in str(weak)


def test_to_pandas_and_equality(youtube):
    L, Y = youtube
    result = lf_summary(L, Y)
    frame = result.to_pandas()
    assert list(frame.columns) == result.table.columns
    assert frame["polarity"].tolist()[0] == [1]
    assert frame["correct"].tolist() == result.table["correct"].to_list()
    assert result == lf_summary(L, Y)
    assert result != lf_summary(L)
    assert isinstance(result, LFSummary)


@pytest.mark.slow
def test_a_million_by_hundred_matrix_takes_seconds():
    rng = np.random.default_rng(0)
    n, m = 1_000_000, 100
    L = rng.integers(-1, 2, size=(n, m), dtype=np.int8)  # dense: 2 votes in 3 cells
    gold = np.where(np.arange(n) % 10 == 0, rng.integers(0, 2, n), -1)
    start = time.perf_counter()
    result = lf_summary(L, gold)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"lf_summary took {elapsed:.1f}s on {n:,} x {m}"
    assert result.totals["n_gold"] == 100_000
    assert result.table["coverage"].to_numpy() == pytest.approx(
        np.count_nonzero(L != -1, axis=0) / n, abs=1e-12
    )
    # the gold rows of the first 20,000 assets, checked against snorkel
    rows = np.flatnonzero(gold[:20_000] != -1)
    sub = L[rows].astype(np.int64)
    assert_matches_snorkel(lf_summary(sub, gold[rows]).table, sub, gold[rows])


def test_gold_given_as_class_names():
    L = np.array([[0, 0, -1], [1, 0, -1], [-1, -1, -1], [1, -1, 1]])
    by_id = lf_summary(L, np.array([0, 1, 1, -1]), class_names=["HAM", "SPAM"])
    by_name = lf_summary(L, ["HAM", "SPAM", "SPAM", None], class_names=["HAM", "SPAM"])
    assert by_name == by_id
    with pytest.raises(InputError, match="pass class_names"):
        lf_summary(L, ["HAM", "SPAM", "SPAM", None])
    with pytest.raises(InputError, match=r"'EGGS' at index 1.*\['HAM', 'SPAM'\]"):
        lf_summary(L, ["HAM", "EGGS", "SPAM", None], class_names=["HAM", "SPAM"])


def test_summary_flags_estimates_outside_the_measured_interval_and_unidentifiable_lfs():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    votes = np.column_stack([np.where(rng.random(3000) < a, y, 1 - y) for a in (0.9, 0.85, 0.7)])
    # a class-1 LF that is always right but fires only where every other LF votes class 0:
    # it never agrees with anyone, so its accuracy cannot be learned from the votes
    lone = np.where((y == 1) & (votes != 1).all(axis=1), 1, -1)
    votes = np.column_stack([votes, lone])
    model = LabelModel(cardinality=2, structure="em").fit(votes)
    table = lf_summary(votes, y, model=model).table
    assert table["identifiable"].to_list() == [True, True, True, False]
    # conditionally independent LFs are estimated within their measured interval; the lone
    # LF (measured 100% right) is estimated far below it
    assert table["accuracy_mismatch"].to_list() == [False, False, False, True]
    assert table["estimated_accuracy"][3] < 0.9 and table["empirical_accuracy"][3] == 1.0
    assert "accuracy_mismatch" not in lf_summary(votes, model=model).table.columns
