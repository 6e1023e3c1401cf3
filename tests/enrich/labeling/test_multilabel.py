"""Multi-label and multi-task application: per-label votes for / against / abstain."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import enrich
from enrich.errors import InputError, LFApplicationError
from enrich.labeling.multilabel import apply_multilabel, apply_tasks
from enrich.tasks import Task
from labeling_functions import (
    ABSTAIN,
    Against,
    LFDefinitionError,
    expression_lf,
    keyword_lf,
    labeling_function,
    nearest_neighbor_lf,
    prototype_lf,
    regex_lf,
    spacy_entity_lf,
)

TASK = Task.multilabel(["promotion", "link", "music"], name="comment")
TEXTS = [
    "check out my channel http://x.io",
    "great song, love the music",
    "subscribe please",
    None,
    "www.site.com has nice music",
]


@pytest.fixture
def data() -> pl.DataFrame:
    return pl.DataFrame({"asset_id": [f"c{i}" for i in range(len(TEXTS))], "text": TEXTS})


def test_vectorized_lfs_vote_for_and_against_each_label(data: pl.DataFrame) -> None:
    lfs = [
        keyword_lf("promo", ["check out", "subscribe"], label="promotion"),
        regex_lf("link", r"https?://|www\.", label="link"),
        keyword_lf("song", ["song", "music"], label=("music", Against("promotion"))),
        expression_lf("short", pl.col("text").str.len_chars() < 20, label=Against("link")),
    ]
    vm = enrich.apply(lfs, data, task=TASK, progress=False)
    assert vm.votes.dtype == np.int8 and vm.shape == (5, 4, 3)
    assert vm.label_names == TASK.labels and vm.asset_ids.to_list()[0] == "c0"
    promotion = vm.votes[:, :, 0].tolist()
    assert promotion == [[1, 0, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, -1, 0]]
    assert vm.votes[:, 1, 1].tolist() == [1, 0, 0, 0, 1]  # link regex
    assert vm.votes[:, 3, 1].tolist() == [0, 0, 1 - 2, 0, 0]  # short: against link
    assert vm.lf_targets == ((0,), (1,), (0, 2), (1,))
    # the binary view of one label keeps only the LFs that concern it
    music = vm.for_label("music")
    assert music.lf_names == ("song",) and music.votes[:, 0].tolist() == [-1, 1, -1, -1, 1]
    assert vm.for_label(0).lf_names == ("promo", "song")


def test_fires_mask_matches_single_label_application(data: pl.DataFrame) -> None:
    lf = keyword_lf("promo", ["check out", "subscribe"], label="promotion")
    single = enrich.apply([lf], data, classes=["HAM", "promotion"], progress=False)
    multi = enrich.apply([lf], data, task=TASK, progress=False)
    assert ((single.votes[:, 0] == 1) == (multi.votes[:, 0, 0] == 1)).all()


def test_row_lfs_answer_labels_sets_dicts_and_against(data: pl.DataFrame) -> None:
    @labeling_function
    def tags(x):
        if x.text is None:
            return ABSTAIN
        if "http" in x.text:
            return ["link", "promotion"]
        if "music" in x.text:
            return {"music": True, "promotion": False, "link": None}
        return Against("link")

    @labeling_function(label=("music", Against("music")))
    def mentions_music(x):
        return "music" if x.text and "music" in x.text else None

    vm = enrich.apply([tags, mentions_music], data, task=TASK, progress=False)
    assert vm.votes[0, 0].tolist() == [1, 1, 0]
    assert vm.votes[1, 0].tolist() == [-1, 0, 1]
    assert vm.votes[2, 0].tolist() == [0, -1, 0]
    assert vm.votes[3].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert vm.votes[:, 1, 2].tolist() == [0, 1, 0, 0, 1]
    assert vm.lf_targets == (None, (2,))
    parallel = enrich.apply([tags, mentions_music], data, task=TASK, n_jobs=2, progress=False)
    assert np.array_equal(parallel.votes, vm.votes)


def test_row_lf_bad_answers_are_named(data: pl.DataFrame) -> None:
    @labeling_function
    def unknown(x):
        return "spam"

    with pytest.raises(LFApplicationError, match=r"'unknown'.*'spam' is not a label"):
        enrich.apply([unknown], data, task=TASK, progress=False)

    @labeling_function
    def numeric_value(x):
        return {"music": 1}

    with pytest.raises(LFApplicationError, match="True \\(for\\), False"):
        enrich.apply([numeric_value], data, task=TASK, progress=False)

    @labeling_function(label="music")
    def outside(x):
        return "link"

    with pytest.raises(LFApplicationError, match="not among its declared labels"):
        enrich.apply([outside], data, task=TASK, progress=False)

    @labeling_function
    def fails(x):
        raise ValueError("boom")

    vm = enrich.apply([fails], data, task=TASK, on_error="abstain", progress=False)
    assert vm.errors["n_errors"].to_list() == [5] and not vm.votes.any()


def test_multilabel_votes_refused_by_a_single_label_task(data: pl.DataFrame) -> None:
    lf = keyword_lf("song", ["song"], label=Against("music"))
    with pytest.raises(LFApplicationError, match="multi-label task"):
        enrich.apply([lf], data, classes=["music", "other"], progress=False)
    with pytest.raises(LFApplicationError, match="'video' is not a label"):
        enrich.apply([keyword_lf("v", ["x"], label="video")], data, task=TASK, progress=False)
    with pytest.raises(InputError, match="either classes= or task="):
        enrich.apply([lf], data, classes=["a"], task=TASK, progress=False)
    with pytest.raises(LFDefinitionError, match="not a label"):
        keyword_lf("bad", ["x"], label=("music", 1.5))
    with pytest.raises(LFDefinitionError, match="Against"):
        Against(["music"])


def test_embedding_lfs_vote_per_label() -> None:
    frame = pl.DataFrame({"asset_id": [0, 1, 2], "embedding": [[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]})
    task = Task.multilabel(["cat", "dog"])
    proto = prototype_lf("near_cat", [[1.0, 0.0]], label="cat", threshold=0.9)
    references = [[1.0, 0.0], [0.95, 0.05], [0.0, 1.0], [0.05, 0.95]]
    knn = nearest_neighbor_lf(
        "knn",
        references,
        [{"cat"}, ("cat", "dog"), ["dog"], "dog"],
        k=2,
        min_agreement=1.0,
    )
    vm = enrich.apply([proto, knn], frame, task=task, progress=False)
    assert vm.votes[:, 0].tolist() == [[1, 0], [0, 0], [0, 0]]
    # row 0: both neighbours are cats, one a dog too; row 1: both dogs, neither a cat
    assert vm.votes[:, 1].tolist()[:2] == [[1, 0], [-1, 1]]
    assert vm.lf_targets == ((0,), None)


def test_spacy_lfs_cast_their_declared_votes(data: pl.DataFrame) -> None:
    task = Task.multilabel(["person", "music"])
    frame = pl.DataFrame({"text": ["Barack Obama spoke.", "buy now", None]})
    lf = spacy_entity_lf("person", ["PERSON"], label=("person", Against("music")))
    vm = enrich.apply([lf], frame, task=task, progress=False)
    assert vm.votes[:, 0].tolist() == [[1, -1], [0, 0], [0, 0]]


def test_apply_tasks_runs_several_named_tasks(data: pl.DataFrame) -> None:
    spam = Task.multiclass(["HAM", "SPAM"], name="spam")
    out = apply_tasks(
        {
            spam: [keyword_lf("sub", ["subscribe", "check out"], label="SPAM")],
            TASK: [regex_lf("link", r"https?://|www\.", label="link")],
        },
        data,
        progress=False,
    )
    assert list(out) == ["spam", "comment"]
    assert out["spam"].votes[:, 0].tolist() == [1, -1, 1, -1, -1]
    assert out["comment"].votes[:, 0, 1].tolist() == [1, 0, 0, 0, 1]
    with pytest.raises(InputError, match="unique"):
        apply_tasks({spam: [], Task.multiclass(["a"], name="spam"): []}, data, progress=False)
    with pytest.raises(InputError, match="multilabel"):
        apply_multilabel([], data, task=spam)


def test_vote_table_and_display(data: pl.DataFrame) -> None:
    lfs = [keyword_lf("song", ["song", "music"], label=("music", Against("promotion")))]
    vm = enrich.apply(lfs, data, task=TASK, progress=False)
    table = vm.to_polars()
    assert table.columns == ["asset_id", "song:promotion", "song:music"]
    assert table["song:music"].to_list() == [0, 1, 0, 0, 1]
    assert "-promotion +music" in vm._display_table()["song"].to_list()


def test_task_validation() -> None:
    with pytest.raises(InputError, match="multiclass' or 'multilabel"):
        Task("ranking", ("a",))
    with pytest.raises(InputError, match="unique"):
        Task.multilabel(["a", "a"])
    with pytest.raises(InputError, match="list of label names"):
        Task.multilabel("abc")


def test_snorkel_lfs_vote_for_the_label_they_return(data: pl.DataFrame) -> None:
    from snorkel.labeling import labeling_function as snorkel_lf

    @snorkel_lf()
    def music(x):
        return 2 if x.text and "music" in x.text else -1

    vm = enrich.apply([music], data, task=TASK, progress=False)
    assert vm.votes[:, 0, 2].tolist() == [0, 1, 0, 0, 1] and vm.lf_targets == (None,)


def test_vote_matrix_checks_its_votes() -> None:
    ids = pl.Series([0, 1])
    vm = enrich.MultiLabelVoteMatrix(
        votes=[[[1, 0]], [[-1, 1]]], lf_names=("a",), label_names=("x", "y"), asset_ids=ids
    )
    assert vm.votes.dtype == np.int8 and vm.take([1]).votes.tolist() == [[[-1, 1]]]
    with pytest.raises(InputError, match=r"\+1 \(for\)"):
        enrich.MultiLabelVoteMatrix(
            votes=[[[2, 0]], [[0, 0]]], lf_names=("a",), label_names=("x", "y"), asset_ids=ids
        )
    with pytest.raises(InputError, match="shape"):
        enrich.MultiLabelVoteMatrix(
            votes=np.zeros((2, 2, 2)), lf_names=("a",), label_names=("x", "y"), asset_ids=ids
        )


def test_text_lfs_run_together_with_the_label_votes_each_gives_alone(data):
    lfs = [
        keyword_lf("promo", ["check out", "subscribe"], label=("promotion", Against("music"))),
        regex_lf("link", r"https?://|www\.", label="link"),
        regex_lf("after_check", r"(?<=check )out", label="promotion"),  # Python re fallback
        keyword_lf("music", ["music", "song"], label="music"),
    ]
    vm = apply_multilabel(lfs, data, task=TASK, progress=False)
    to_id = TASK.labels.index
    for j, lf in enumerate(lfs):
        np.testing.assert_array_equal(vm.votes[:, j, :], lf.label_votes(data, to_id, 3), lf.name)
    assert vm.votes[0, 0].tolist() == [1, 0, -1] and vm.votes[3].sum() == 0
