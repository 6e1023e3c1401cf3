"""Multi-label LFs: Against, label tuples, per-label votes of vectorized LFs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from labeling_functions import (
    Against,
    KeywordLF,
    LFDefinitionError,
    expression_lf,
    keyword_lf,
    label_targets,
    labeling_function,
    nearest_neighbor_lf,
)

IDS = {"cat": 0, "dog": 1, "bird": 2}.__getitem__


def test_label_targets_and_against() -> None:
    assert label_targets("cat") == (("cat", 1),)
    assert label_targets(("cat", Against("dog"), 2)) == (("cat", 1), ("dog", -1), (2, 1))
    assert Against("dog") == Against("dog") and repr(Against(1)) == "Against(1)"
    for bad in [(), (1.5,), True, [("cat",)]]:
        with pytest.raises(LFDefinitionError):
            label_targets(bad)
    with pytest.raises(LFDefinitionError, match="Against"):
        Against(True)


def test_lf_labels_accept_multilabel_votes_and_check_them() -> None:
    lf = keyword_lf("k", ["meow"], label=("cat", Against("dog")))
    assert lf.label == ("cat", Against("dog"))
    with pytest.raises(LFDefinitionError, match="class id >= 0"):
        keyword_lf("k", ["x"], label=(Against(-2),))
    with pytest.raises(LFDefinitionError, match=r"'k'.*not a label"):
        keyword_lf("k", ["x"], label=("cat", None))

    @labeling_function(label=Against("bird"))
    def no_bird(x):
        return Against("bird")

    assert no_bird.label == Against("bird")


def test_versions_tell_a_vote_from_a_vote_against() -> None:
    versions = {
        keyword_lf("k", ["x"], label="cat").version,
        keyword_lf("k", ["x"], label=Against("cat")).version,
        keyword_lf("k", ["x"], label=("cat",)).version,
        keyword_lf("k", ["x"], label=("cat", Against("dog"))).version,
    }
    assert len(versions) == 4
    again = keyword_lf("k", ["x"], label=("cat", Against("dog"))).version
    assert again in versions


def test_vectorized_label_votes_write_declared_votes_where_the_lf_fires() -> None:
    frame = pl.DataFrame({"text": ["meow meow", "woof", None], "n": [1, 5, 3]})
    lf = keyword_lf("meow", ["meow"], label=("cat", Against("dog")))
    assert lf.label_votes(frame, IDS, 3).tolist() == [[1, -1, 0], [0, 0, 0], [0, 0, 0]]
    big = expression_lf("big", pl.col("n") > 2, label=Against("bird"))
    votes = big.label_votes(frame, IDS, 3)
    assert votes.dtype == np.int8 and votes.tolist() == [[0, 0, 0], [0, 0, -1], [0, 0, -1]]


def test_nearest_neighbour_label_sets() -> None:
    references = [[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0]]
    lf = nearest_neighbor_lf(
        "knn", references, [{"cat", "dog"}, ["cat"], "cat", ()], k=3, min_agreement=2 / 3
    )
    assert lf.reference_labels == (("cat", "dog"), ("cat",), "cat", ())
    frame = pl.DataFrame({"embedding": [[1.0, 0.0], [0.0, 1.0]]})
    votes = lf.label_votes(frame, IDS, 3)
    # row 0: 3 cats of 3, 1 dog of 3 -> for cat, against dog, against bird
    assert votes[0].tolist() == [1, -1, -1]
    assert votes.shape == (2, 3) and lf.label_votes(frame.head(0), IDS, 3).shape == (0, 3)
    with pytest.raises(LFDefinitionError, match="declares no label"):
        KeywordLF(name="k", label=None, keywords=("x",)).label_votes(frame, IDS, 3)
