"""Datasets that ship inside enrich, so examples and demos run with no download.

The bundled set is the UCI YouTube Spam Collection (CC BY 4.0; Alberto, Lochter & Almeida,
ICMLA 2015): 1,953 YouTube comments on five music videos with a gold spam label. Its source,
licence, citation and column meanings are in ``enrich/data/ATTRIBUTION.md``.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
import polars as pl

from enrich.errors import EnrichError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import pandas as pd

__all__ = [
    "YOUTUBE_SPAM_CLASSES",
    "MnistSample",
    "load_mnist_sample",
    "load_youtube_spam",
    "load_youtube_spam_pandas",
]

logger = logging.getLogger(__name__)

#: Class names of the YouTube spam labels, indexed by the ``label`` value (0 = HAM, 1 = SPAM).
YOUTUBE_SPAM_CLASSES: Final[tuple[str, str]] = ("HAM", "SPAM")

_YOUTUBE_SPAM_FILE: Final = "youtube_spam.parquet"
_MNIST_SAMPLE_FILE: Final = "mnist_sample.npz"


def _bundled_file(name: str) -> Traversable:
    """Locate a file of ``enrich/data`` through :mod:`importlib.resources`."""
    return resources.files("enrich").joinpath("data", name)


def load_youtube_spam() -> pl.DataFrame:
    """Load the bundled UCI YouTube Spam Collection as a polars DataFrame.

    Returns
    -------
    polars.DataFrame
        1,953 rows, one per comment, with the columns ``asset_id`` (str, unique comment id),
        ``text`` (str, the comment verbatim), ``author`` (str), ``published_at`` (Datetime,
        null for the 243 comments without a date), ``video`` (str: ``"Psy"``,
        ``"KatyPerry"``, ``"LMFAO"``, ``"Eminem"``, ``"Shakira"``, a natural slice) and
        ``label`` (Int8 gold label: 0 = HAM, 1 = SPAM; names in
        :data:`YOUTUBE_SPAM_CLASSES`). Each call returns a fresh frame.

    Raises
    ------
    EnrichError
        If the data file is missing from the installed package (a broken install).

    Examples
    --------
    >>> from enrich.datasets import YOUTUBE_SPAM_CLASSES, load_youtube_spam
    >>> df = load_youtube_spam()
    >>> df.shape
    (1953, 6)
    >>> df.columns
    ['asset_id', 'text', 'author', 'published_at', 'video', 'label']
    >>> [YOUTUBE_SPAM_CLASSES[i] for i in df["label"].unique().sort()]
    ['HAM', 'SPAM']
    """
    resource = _bundled_file(_YOUTUBE_SPAM_FILE)
    if not resource.is_file():
        raise EnrichError(
            f"the bundled dataset {_YOUTUBE_SPAM_FILE!r} is missing from the enrich package "
            f"(looked in {str(resource)!r}); reinstall enrich, or rebuild the file with "
            "`python scripts/build_youtube_spam.py` from a source checkout"
        )
    with resource.open("rb") as handle:
        frame = pl.read_parquet(handle)
    logger.debug("loaded %d rows from %s", frame.height, resource)
    return frame


def load_youtube_spam_pandas() -> pd.DataFrame:
    """Load the bundled UCI YouTube Spam Collection as a pandas DataFrame.

    Same rows and columns as :func:`load_youtube_spam`, converted once with
    ``polars.DataFrame.to_pandas``: ``published_at`` is ``datetime64[us]`` (NaT where the
    source has no date) and ``label`` is ``int8``.

    Examples
    --------
    >>> from enrich.datasets import load_youtube_spam_pandas
    >>> df = load_youtube_spam_pandas()
    >>> df.shape
    (1953, 6)
    >>> str(df["label"].dtype)
    'int8'
    """
    return load_youtube_spam().to_pandas()


class MnistSample(NamedTuple):
    """The bundled MNIST sample.

    ``images`` uint8 (n, 28, 28), ``labels`` int8 digits (n,), ``rows`` the images' row
    numbers in the MNIST test set.
    """

    images: np.ndarray
    labels: np.ndarray
    rows: np.ndarray


def load_mnist_sample() -> MnistSample:
    """Load 2,000 MNIST test digits (200 of each) that ship with enrich (CC BY-SA 3.0).

    Examples
    --------
    >>> from enrich.datasets import load_mnist_sample
    >>> sample = load_mnist_sample()
    >>> sample.images.shape, sample.images.dtype.name, sorted(set(sample.labels.tolist()))[:3]
    ((2000, 28, 28), 'uint8', [0, 1, 2])
    """
    resource = _bundled_file(_MNIST_SAMPLE_FILE)
    if not resource.is_file():
        raise EnrichError(
            f"the bundled image sample {_MNIST_SAMPLE_FILE!r} is missing from the enrich package "
            f"(looked in {str(resource)!r}); reinstall enrich, or rebuild it with "
            "`python scripts/build_mnist_sample.py` from a source checkout"
        )
    with resource.open("rb") as handle, np.load(handle) as arrays:
        return MnistSample(arrays["images"], arrays["labels"], arrays["rows"])
