"""PrecomputedEmbeddings and embedding_matrix: vectors users already have."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from embeddings.encoder import EmbeddingInputError, Encoder
from embeddings.precomputed import PrecomputedEmbeddings, embedding_matrix

ROWS = [[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]]
EXPECTED = np.array(ROWS) / np.linalg.norm(ROWS, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "column",
    [
        np.array(ROWS),
        np.array(ROWS, dtype=np.float32),
        ROWS,
        pl.Series("v", ROWS, dtype=pl.Array(pl.Float64, 3)),
        pl.Series("v", ROWS, dtype=pl.List(pl.Float32)),
        pd.Series([np.array(r) for r in ROWS]),
        pa.array(ROWS),
        pa.array(ROWS, type=pa.list_(pa.float32(), 3)),
    ],
    ids=["numpy", "numpy32", "list", "pl-array", "pl-list", "pandas", "arrow", "arrow-fixed"],
)
def test_every_column_kind_gives_the_same_unit_rows(column):
    out = embedding_matrix(column)
    assert out.dtype == np.float32 and out.shape == (3, 3)
    np.testing.assert_allclose(out, EXPECTED, atol=1e-6)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ([[1.0, 2.0], [1.0]], "row 0 has 2, row 1 has 1"),
        (pl.Series([[1.0, 2.0], [3.0]]), "row 0 has 2, row 1 has 1"),
        ([[1.0, 2.0], [np.nan, 1.0]], r"row 1 holds NaN or infinite values \(\[nan, 1\]\)"),
        ([[1.0, np.inf]], "row 0 holds NaN or infinite"),
        ([[1.0, 2.0], None], "row 1 is null"),
        (pl.Series([[1.0, 2.0], None]), "row 1 is null"),
        ([[1.0, 2.0], [0.0, 0.0]], "row 1 is all zeros"),
        ([[1.0, 2.0], "ab"], "row 1 is str"),
        (pl.Series(["a", "b"]), "dtype Array or List"),
        (np.ones((2, 2, 2)), r"shape \(2, 2, 2\)"),
        ([[1.0, "x"]], "numbers only"),
    ],
)
def test_bad_columns_are_refused_quoting_the_row(column, message):
    with pytest.raises(EmbeddingInputError, match=message):
        embedding_matrix(column)


def test_extreme_but_finite_rows_normalize_and_zero_rows_stay_zero():
    rows = np.array(
        [[3e30, 4e30], [3e-30, 4e-30], [1e38, 1e38], [0.0, 0.0], [-1.0, 0.0]], dtype=np.float32
    )
    out = embedding_matrix(rows, allow_zero=True)
    expected = np.array([[0.6, 0.8], [0.6, 0.8], [0.5**0.5] * 2, [0.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(out, expected, atol=1e-6)
    with pytest.raises(EmbeddingInputError, match="row 3 is all zeros"):
        embedding_matrix(rows)


def test_unit_rows_match_a_float64_reference_on_random_vectors():
    rows = np.random.default_rng(0).standard_normal((2000, 384)).astype(np.float32)
    reference = rows.astype(np.float64)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(embedding_matrix(rows), reference, atol=1e-6)


def test_dimension_is_checked():
    with pytest.raises(EmbeddingInputError, match="3 dimensions, expected 4"):
        embedding_matrix(ROWS, dim=4)


def test_options_keep_zero_rows_and_skip_normalization():
    raw = embedding_matrix([[0.0, 0.0], [3.0, 4.0]], allow_zero=True, normalize=False)
    np.testing.assert_array_equal(raw, [[0.0, 0.0], [3.0, 4.0]])
    assert embedding_matrix(np.zeros((0, 5))).shape == (0, 5)


def test_precomputed_is_an_encoder():
    encoder = PrecomputedEmbeddings(dim=3, name="my-clip")
    assert isinstance(encoder, Encoder)
    assert encoder.id == "precomputed:my-clip:dim=3:l2" and encoder.dim == 3
    np.testing.assert_allclose(
        encoder.encode(pl.Series(ROWS, dtype=pl.Array(pl.Float64, 3))), EXPECTED, atol=1e-6
    )
    assert encoder.content_digest([3.0, 4.0, 0.0]) == encoder.content_digest(
        np.array([3, 4, 0], dtype=np.float32)
    )
    with pytest.raises(EmbeddingInputError, match="expected 3"):
        encoder.encode([[1.0, 2.0]])


@pytest.mark.parametrize(("dim", "name"), [(0, "x"), (2.0, "x"), (3, ""), (3, "a:b")])
def test_precomputed_checks_its_options(dim, name):
    with pytest.raises(EmbeddingInputError):
        PrecomputedEmbeddings(dim=dim, name=name)
