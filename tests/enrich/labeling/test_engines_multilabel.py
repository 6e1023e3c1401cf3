"""Both engines apply a multi-label task's LFs with identical votes (YouTube comments)."""

from __future__ import annotations

import numpy as np
import pytest

from enrich.datasets import load_youtube_spam
from enrich.labeling.engines import DaskEngine, LocalEngine
from enrich.labeling.sources import load_lfs
from enrich.multilabel_votes import MultiLabelVoteMatrix
from enrich.tasks import Task

LFS = """
from labeling_functions import ABSTAIN, Against, keyword_lf, labeling_function, regex_lf

promo = keyword_lf("promo", ["check out", "subscribe", "my channel"], label="promotion")
link = regex_lf("link", r"https?://|www\\.", label="link", ignore_case=True)
song = keyword_lf("song", ["song", "love this"], label=("music", Against("promotion")))

@labeling_function()
def shouting(x):
    text = x.text or ""
    if len(text) > 12 and text.upper() == text:
        return {"promotion": True, "music": False}
    if "http" in text and "youtube" in text.lower():
        raise ValueError("a row-wise LF that fails on some rows")
    return ABSTAIN
"""

TASK = Task.multilabel(["promotion", "link", "music"], name="topics")


@pytest.fixture(scope="module")
def dask_engine():
    engine = DaskEngine(n_workers=1, threads_per_worker=1, processes=False, partition_size=97)
    yield engine
    engine.close()


def test_local_and_dask_engines_give_the_same_multilabel_votes(tmp_path, dask_engine):
    (tmp_path / "lfs.py").write_text(LFS)
    sources = [str(tmp_path / "lfs.py")]
    lfs = load_lfs(sources)
    data = load_youtube_spam().slice(0, 400)
    options = {"classes": TASK.labels, "task": TASK, "on_error": "abstain", "lf_sources": sources}
    local = LocalEngine().apply(lfs, data, **options)
    shipped = dask_engine.apply(lfs, data, **{**options, "lf_sources": None})
    loaded = dask_engine.apply(lfs, data, **options)  # the workers load the LFs themselves
    assert isinstance(local, MultiLabelVoteMatrix) and local.votes.shape == (400, 4, 3)
    assert (local.votes != 0).any(axis=(0, 1)).all()  # every label got votes
    for other in (shipped, loaded):
        assert isinstance(other, MultiLabelVoteMatrix)
        assert np.array_equal(local.votes, other.votes)
        assert other.asset_ids.to_list() == local.asset_ids.to_list()
        assert other.lf_targets == local.lf_targets and other.label_names == TASK.labels
        assert other.errors.to_dicts() == local.errors.to_dicts()
    assert local.errors.get_column("lf").to_list() == ["shouting"]
    assert local.errors.get_column("n_errors")[0] > 0


def test_engines_keep_single_label_votes_without_a_task(dask_engine):
    lfs = load_lfs(["labeling_functions.packs.youtube_spam:LFS"])
    data = load_youtube_spam().slice(0, 300)
    local = LocalEngine().apply(lfs, data, classes=["HAM", "SPAM"])
    remote = dask_engine.apply(lfs, data, classes=["HAM", "SPAM"])
    assert local.votes.dtype == remote.votes.dtype and local.votes.ndim == 2
    assert np.array_equal(local.votes, remote.votes)
