"""What `enrich.apply` accepts: one LF, pandas indexes, Hugging Face datasets, Snorkel LFs
that subscript rows; what it refuses: repeated ids, typo'd classes (with a suggestion); and
the vote matrix going wherever Snorkel expects an array."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from snorkel.labeling import LFAnalysis, PandasLFApplier
from snorkel.labeling import labeling_function as snorkel_lf
from snorkel.labeling.model import LabelModel as SnorkelLabelModel

import enrich
from enrich.errors import InputError, LFApplicationError
from labeling_functions import keyword_lf, labeling_function

CLASSES = ["HAM", "SPAM"]
TEXTS = ["check out my channel", "great song", "subscribe now", "love it", "ok"]


def test_a_single_lf_is_accepted():
    lf = keyword_lf("check", ["check out"], label="SPAM")
    data = pl.DataFrame({"text": TEXTS})
    one = enrich.apply(lf, data, classes=CLASSES, progress=False)
    listed = enrich.apply([lf], data, classes=CLASSES, progress=False)
    assert one.lf_names == ("check",)
    assert np.array_equal(one.votes, listed.votes)


def test_a_single_snorkel_lf_is_accepted():
    @snorkel_lf()
    def has_sub(x):
        return 1 if "sub" in x.text else -1

    votes = enrich.apply(has_sub, pl.DataFrame({"text": TEXTS}), classes=CLASSES, progress=False)
    assert votes.votes[:, 0].tolist() == [-1, -1, 1, -1, -1]


def test_not_an_lf_is_refused_clearly():
    with pytest.raises(InputError, match="labeling function or a list"):
        enrich.apply(42, pl.DataFrame({"text": TEXTS}), progress=False)


def test_repeated_asset_ids_are_refused_quoting_one():
    data = pl.DataFrame({"asset_id": ["a", "b", "a", "c", "c"], "text": TEXTS})
    lf = keyword_lf("check", ["check out"], label="SPAM")
    with pytest.raises(InputError, match=r"\['a', 'c'\] more than once"):
        enrich.apply([lf], data, classes=CLASSES, progress=False)


def test_a_named_pandas_index_gives_the_ids():
    df = pd.DataFrame(
        {"text": TEXTS}, index=pd.Index([f"v{i}" for i in (5, 3, 9, 1, 7)], name="video")
    )
    lf = keyword_lf("check", ["check out"], label="SPAM")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        votes = enrich.apply([lf], df, classes=CLASSES, progress=False)
    assert votes.asset_ids.to_list() == ["v5", "v3", "v9", "v1", "v7"]


def test_an_index_named_asset_id_gives_the_ids():
    df = pd.DataFrame({"text": TEXTS}, index=pd.Index([10, 11, 12, 13, 14], name="asset_id"))
    votes = enrich.apply(
        [keyword_lf("check", ["check out"], label="SPAM")], df, classes=CLASSES, progress=False
    )
    assert votes.asset_ids.to_list() == [10, 11, 12, 13, 14]


def test_an_unnamed_non_default_index_warns():
    df = pd.DataFrame({"text": TEXTS}, index=["x", "y", "z", "u", "w"])
    lf = keyword_lf("check", ["check out"], label="SPAM")
    with pytest.warns(UserWarning, match="unnamed index"):
        votes = enrich.apply([lf], df, classes=CLASSES, progress=False)
    assert votes.asset_ids.to_list() == [0, 1, 2, 3, 4]
    filtered = pd.DataFrame({"asset_id": list("abcde"), "text": TEXTS}).iloc[[4, 2]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an asset_id column: the leftover index is not ids
        votes = enrich.apply([lf], filtered, classes=CLASSES, progress=False)
        assert votes.asset_ids.to_list() == ["e", "c"]


def test_a_hugging_face_dataset_is_accepted_in_its_current_order_and_selection():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"asset_id": [f"a{i}" for i in range(5)], "text": TEXTS})
    view = ds.select([4, 2, 0])  # an index map over the full Arrow table
    lf = keyword_lf("check", ["check out"], label="SPAM")
    votes = enrich.apply([lf], view, classes=CLASSES, progress=False)
    assert votes.asset_ids.to_list() == ["a4", "a2", "a0"]
    assert votes.votes[:, 0].tolist() == [-1, -1, 1]


def test_snorkel_lfs_that_subscript_rows_work():
    @snorkel_lf()
    def by_key(x):
        return 1 if "check" in x["text"] else -1

    @labeling_function()
    def enrich_by_key(x):
        return 1 if "song" in x["text"] else -1

    data = pl.DataFrame({"text": TEXTS})
    votes = enrich.apply([by_key, enrich_by_key], data, classes=CLASSES, progress=False)
    expected = PandasLFApplier([by_key]).apply(data.to_pandas(), progress_bar=False)
    assert votes.votes[:, 0].tolist() == expected[:, 0].tolist() == [1, -1, -1, -1, -1]
    assert votes.votes[:, 1].tolist() == [-1, 1, -1, -1, -1]


@pytest.mark.parametrize(
    ("classes", "answer", "suggestion"),
    [
        (CLASSES, "SAPM", "'SPAM'"),
        (CLASSES, "ham", "'HAM'"),
        (["POSITIVE", "NEGATIVE"], "POSITVE", "'POSITIVE'"),
    ],
)
def test_a_typo_in_a_class_gets_a_suggestion(classes, answer, suggestion):
    with pytest.raises(LFApplicationError, match=f"did you mean {suggestion}"):
        enrich.apply(
            [keyword_lf("k", ["song"], label=answer)],
            pl.DataFrame({"text": TEXTS}),
            classes=classes,
            progress=False,
        )

    @labeling_function()
    def says(x):
        return answer

    with pytest.raises(LFApplicationError, match=f"did you mean {suggestion}"):
        enrich.apply([says], pl.DataFrame({"text": TEXTS}), classes=classes, progress=False)


def test_a_typo_in_gold_and_label_studio_gets_a_suggestion():
    from enrich.analysis.gold import gold_vector
    from enrich.io.label_studio import to_label_studio

    gold = pl.DataFrame({"asset_id": ["a"], "label_name": ["SPAMM"]})
    with pytest.raises(InputError, match="did you mean 'SPAM'"):
        gold_vector(gold, ["a"], CLASSES)
    queue = pl.DataFrame({"asset_id": ["a"], "label_name": ["Ham"]})
    with pytest.raises(InputError, match="did you mean 'HAM'"):
        to_label_studio(
            queue, pl.DataFrame({"asset_id": ["a"], "text": ["x"]}), class_names=CLASSES
        )


def _vote_matrix(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    votes = np.where(rng.random((n, 4)) < 0.75, y[:, None], 1 - y[:, None])
    votes = np.where(rng.random((n, 4)) < 0.4, -1, votes).astype(np.int32)
    data = pl.DataFrame({"asset_id": range(n), **{f"v{j}": votes[:, j] for j in range(4)}})
    lfs = [labeling_function(name=f"lf{j}")(lambda x, j=j: x[f"v{j}"]) for j in range(4)]
    vm = enrich.apply(lfs, data, classes=CLASSES, progress=False)
    assert np.array_equal(vm.votes, votes)
    return vm, y


def test_snorkel_lf_analysis_takes_a_vote_matrix():
    vm, y = _vote_matrix()
    ours = LFAnalysis(L=vm).lf_summary(Y=y)
    theirs = LFAnalysis(L=np.asarray(vm)).lf_summary(Y=y)
    pd.testing.assert_frame_equal(ours, theirs)


def test_snorkel_label_model_fits_on_a_vote_matrix():
    vm, _ = _vote_matrix()
    ours = SnorkelLabelModel(cardinality=2, verbose=False)
    ours.fit(L_train=vm, n_epochs=50, seed=3, progress_bar=False)
    theirs = SnorkelLabelModel(cardinality=2, verbose=False)
    theirs.fit(L_train=np.asarray(vm), n_epochs=50, seed=3, progress_bar=False)
    assert np.allclose(ours.predict_proba(vm), theirs.predict_proba(np.asarray(vm)))


def test_vote_matrix_acts_as_an_array_and_stays_hashable():
    vm, _ = _vote_matrix(20)
    assert (vm + 1).min() >= 0 and isinstance(vm + 1, np.ndarray)
    assert vm[:, 0].tolist() == vm.votes[:, 0].tolist()
    assert vm.flatten().shape == (80,) and vm.ndim == 2 and vm.dtype == np.int32
    assert {vm: 1}[vm] == 1


def test_a_typo_in_the_job_gold_column_gets_a_suggestion():
    from enrich.job.fit import source_gold

    data = pl.DataFrame({"gold": ["HAM", "Spam", None]})
    with pytest.raises(InputError, match="did you mean 'SPAM'"):
        source_gold(data, "gold", CLASSES)
