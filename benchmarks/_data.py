"""Loaders for the benchmark vote matrices: the WRENCH sets and the crowd-annotation sets.

Every loader returns a :class:`VoteSet`: the vote matrix in the enrich contract (int, shape
``(n_assets, n_lfs)``, classes ``0..k-1``, abstain ``-1``) with its gold labels. The data lives
in ``../shared/data`` beside the checkout (override with ``ENRICH_SHARED_DATA``); see
its README for where each set comes from and why ``sms`` is scored on its train split.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

WrenchName = Literal["youtube", "sms", "trec"]
WrenchSplit = Literal["train", "valid", "test"]
CrowdName = Literal["dog", "product_er"]

WRENCH_SETS: tuple[WrenchName, ...] = ("youtube", "sms", "trec")
CROWD_SETS: tuple[CrowdName, ...] = ("dog", "product_er")


def data_root() -> Path:
    """Return the shared data folder (``$ENRICH_SHARED_DATA`` or ``../shared/data``)."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    root = Path(os.environ.get("ENRICH_SHARED_DATA", default))
    if not root.is_dir():
        raise FileNotFoundError(
            f"benchmark data folder {str(root)!r} does not exist; set ENRICH_SHARED_DATA to the "
            "folder that holds wrench/ and crowd/"
        )
    return root


@dataclass(frozen=True)
class VoteSet:
    """A vote matrix with its gold labels.

    Attributes:
        name: the set's name, e.g. ``"youtube/train"``.
        votes: int64 array ``(n_assets, n_lfs)``; ``-1`` is an abstain.
        gold: int64 array ``(n_assets,)`` of true classes.
        class_names: one name per class, in class-id order.
    """

    name: str
    votes: np.ndarray
    gold: np.ndarray
    class_names: tuple[str, ...]

    @property
    def cardinality(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def load_wrench(name: WrenchName, split: WrenchSplit) -> VoteSet:
    """Load one split of a WRENCH set (``wrench/<name>/<split>.json``) as a :class:`VoteSet`."""
    if name not in WRENCH_SETS:
        raise ValueError(f"unknown WRENCH set {name!r}; choose one of {WRENCH_SETS}")
    folder = data_root() / "wrench" / name
    with open(folder / "label.json", encoding="utf-8") as fh:
        labels = json.load(fh)
    class_names = tuple(labels[str(i)] for i in range(len(labels)))
    with open(folder / f"{split}.json", encoding="utf-8") as fh:
        records = json.load(fh)
    rows = [records[key] for key in sorted(records, key=int)]
    votes = np.array([r["weak_labels"] for r in rows], dtype=np.int64)
    gold = np.array([r["label"] for r in rows], dtype=np.int64)
    return VoteSet(f"{name}/{split}", votes, gold, class_names)


def load_crowd(name: CrowdName) -> VoteSet:
    """Load a crowd set (``crowd/<name>/{answer,truth}.csv``): one row per question, one column
    per worker (sorted by worker id), ``-1`` where the worker did not answer that question."""
    import polars as pl

    if name not in CROWD_SETS:
        raise ValueError(f"unknown crowd set {name!r}; choose one of {CROWD_SETS}")
    folder = data_root() / "crowd" / name
    ids = {"question": pl.Utf8, "worker": pl.Utf8}
    answers = pl.read_csv(folder / "answer.csv", schema_overrides=ids)
    truth = pl.read_csv(folder / "truth.csv", schema_overrides={"question": pl.Utf8})
    questions = truth["question"].sort()
    workers = answers["worker"].unique().sort()
    q_index = {q: i for i, q in enumerate(questions.to_list())}
    w_index = {w: i for i, w in enumerate(workers.to_list())}
    votes = np.full((len(questions), len(workers)), -1, dtype=np.int64)
    rows = np.array([q_index[q] for q in answers["question"].to_list()])
    cols = np.array([w_index[w] for w in answers["worker"].to_list()])
    votes[rows, cols] = answers["answer"].to_numpy()
    gold = np.empty(len(questions), dtype=np.int64)
    gold[[q_index[q] for q in truth["question"].to_list()]] = truth["truth"].to_numpy()
    k = int(max(votes.max(), gold.max())) + 1
    return VoteSet(name, votes, gold, tuple(str(c) for c in range(k)))
