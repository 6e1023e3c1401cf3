"""The bundled UCI YouTube Spam Collection: content, types, and reproducibility from source."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from enrich.datasets import (
    YOUTUBE_SPAM_CLASSES,
    load_youtube_spam,
    load_youtube_spam_pandas,
)

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO.parent / "shared" / "data" / "uci_youtube_spam"
SCRIPT = REPO / "scripts" / "build_youtube_spam.py"
VIDEOS = ["Psy", "KatyPerry", "LMFAO", "Eminem", "Shakira"]


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_youtube_spam", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def source_rows() -> list[dict[str, str]]:
    rows = []
    for path in sorted(SOURCE.glob("Youtube0*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            video = path.stem.split("-", 1)[1]
            rows.extend({**row, "video": video} for row in csv.DictReader(handle))
    return rows


def test_schema_and_shape():
    df = load_youtube_spam()
    assert df.schema == pl.Schema(
        {
            "asset_id": pl.String,
            "text": pl.String,
            "author": pl.String,
            "published_at": pl.Datetime("us"),
            "video": pl.String,
            "label": pl.Int8,
        }
    )
    assert df.shape == (1953, 6)
    assert df["asset_id"].is_unique().all()
    assert df.select(pl.exclude("published_at").null_count()).sum_horizontal().item() == 0
    assert YOUTUBE_SPAM_CLASSES == ("HAM", "SPAM")


def test_counts_per_video_and_label():
    df = load_youtube_spam()
    per_video = dict(df.group_by("video").len().iter_rows())
    assert per_video == {"Psy": 350, "KatyPerry": 350, "LMFAO": 438, "Eminem": 446, "Shakira": 369}
    assert df["video"].unique(maintain_order=True).to_list() == VIDEOS
    assert dict(df.group_by("label").len().iter_rows()) == {0: 950, 1: 1003}
    assert df["published_at"].null_count() == 243


def test_every_row_matches_the_source_csv(source_rows):
    df = load_youtube_spam()
    by_id = {row["COMMENT_ID"]: row for row in source_rows}
    # 1956 source rows, 3 exact repeats dropped
    assert len(source_rows) == 1956
    assert len(by_id) == df.height
    for asset_id, text, author, published_at, video, label in df.iter_rows():
        row = by_id[asset_id]
        assert text == row["CONTENT"]
        assert author == row["AUTHOR"]
        assert video == row["video"]
        assert label == int(row["CLASS"])
        expected = dt.datetime.fromisoformat(row["DATE"]) if row["DATE"] else None
        assert published_at == expected
    # the dropped rows were exact copies of the row that was kept
    seen: dict[str, dict[str, str]] = {}
    for row in source_rows:
        if row["COMMENT_ID"] in seen:
            assert row == seen[row["COMMENT_ID"]]
        seen.setdefault(row["COMMENT_ID"], row)


def test_pandas_loader_has_the_same_data():
    pdf = load_youtube_spam_pandas()
    assert isinstance(pdf, pd.DataFrame)
    assert list(pdf.columns) == load_youtube_spam().columns
    assert str(pdf["label"].dtype) == "int8"
    assert str(pdf["published_at"].dtype) == "datetime64[us]"
    assert int(pdf["published_at"].isna().sum()) == 243
    assert pl.from_pandas(pdf).equals(load_youtube_spam())


def test_loader_returns_a_fresh_frame():
    first = load_youtube_spam()
    first = first.with_columns(pl.lit(9, dtype=pl.Int8).alias("label"))
    assert load_youtube_spam()["label"].max() == 1


def test_script_rebuilds_the_bundled_file_exactly(builder, tmp_path):
    out = tmp_path / "youtube_spam.parquet"
    assert builder.main(["--source", str(SOURCE), "--output", str(out)]) == 0
    assert pl.read_parquet(out).equals(load_youtube_spam())


def test_script_refuses_duplicate_ids_with_different_content(builder, tmp_path):
    for path in SOURCE.glob("Youtube0*.csv"):
        shutil.copy(path, tmp_path / path.name)
    eminem = tmp_path / "Youtube04-Eminem.csv"
    text = eminem.read_text(encoding="utf-8")
    dup_id = "LneaDw26bFuH6iFsSrjlJLJIX3qD4R8-emuZ-aGUj0o"
    first = text.index(dup_id)
    second = text.index(dup_id, first + 1)
    line_end = text.index("\n", second)
    changed = text[:second] + text[second:line_end].replace("rihanna", "RIHANNA") + text[line_end:]
    eminem.write_text(changed, encoding="utf-8")
    with pytest.raises(builder.BuildError, match=dup_id):
        builder.build(tmp_path)


def test_script_refuses_an_unparseable_date(builder, tmp_path):
    for path in SOURCE.glob("Youtube0*.csv"):
        shutil.copy(path, tmp_path / path.name)
    psy = tmp_path / "Youtube01-Psy.csv"
    psy.write_text(
        psy.read_text(encoding="utf-8").replace("2013-11-07T06:20:48", "07/11/2013", 1),
        encoding="utf-8",
    )
    with pytest.raises(builder.BuildError, match="07/11/2013"):
        builder.build(tmp_path)
    assert builder.main(["--source", str(tmp_path), "--output", str(tmp_path / "x.pq")]) == 1
    assert not (tmp_path / "x.pq").exists()


def test_mnist_sample_is_200_real_test_digits_of_each_class(shared_data):
    import numpy as np

    from enrich.datasets import load_mnist_sample

    sample = load_mnist_sample()
    assert sample.images.shape == (2000, 28, 28) and sample.images.dtype == np.uint8
    assert np.bincount(sample.labels, minlength=10).tolist() == [200] * 10
    source = np.load(shared_data / "mnist_t10k" / "X_test_28x28_uint8.npy", mmap_mode="r")
    truth = np.load(shared_data / "mnist_t10k" / "y_test.npy")
    np.testing.assert_array_equal(sample.images, source[sample.rows])
    np.testing.assert_array_equal(sample.labels, truth[sample.rows])
