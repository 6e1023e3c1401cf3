"""Rebuild ``enrich/data/youtube_spam.parquet`` from the UCI YouTube Spam Collection CSVs.

The five source files (``Youtube0[1-5]-<video>.csv``: COMMENT_ID, AUTHOR, DATE, CONTENT,
CLASS) are read as text, checked, and written as one Parquet file with the columns
``asset_id, text, author, published_at, video, label``. The build is deterministic: rows
keep the file order (Psy, KatyPerry, LMFAO, Eminem, Shakira) and the row order inside each
file, so rebuilding from the same CSVs gives the same table.

Duplicates: a COMMENT_ID that occurs more than once with *identical* fields in every
column is an exact duplicate row of the source; the first occurrence is kept and the others
are dropped (the source has three such rows). A COMMENT_ID that occurs more than once with
*different* fields stops the build, because no rule could pick the right row.

Dates: DATE holds ISO timestamps with or without fractional seconds; every non-empty value
must parse (the build stops on one that does not), and only empty DATE cells become null.

Usage (from the repository root)::

    python scripts/build_youtube_spam.py
    python scripts/build_youtube_spam.py --source ../shared/data/uci_youtube_spam \\
        --output enrich/data/youtube_spam.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "uci_youtube_spam"
DEFAULT_OUTPUT = REPO_ROOT / "enrich" / "data" / "youtube_spam.parquet"

# File name -> the video slice, in the order the rows are written.
SOURCE_FILES: dict[str, str] = {
    "Youtube01-Psy.csv": "Psy",
    "Youtube02-KatyPerry.csv": "KatyPerry",
    "Youtube03-LMFAO.csv": "LMFAO",
    "Youtube04-Eminem.csv": "Eminem",
    "Youtube05-Shakira.csv": "Shakira",
}
SOURCE_COLUMNS = ["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"]
# Every DATE format seen in the source; a value must match one of them.
DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d")


class BuildError(Exception):
    """The source data cannot be turned into the bundled table as it stands."""


def read_source(source: Path) -> pl.DataFrame:
    """Read the five CSVs as text, tagged with their video and their position."""
    frames = []
    for file_name, video in SOURCE_FILES.items():
        path = source / file_name
        if not path.is_file():
            raise BuildError(
                f"missing source file {str(path)!r}; pass --source pointing at the folder "
                f"holding {', '.join(SOURCE_FILES)}"
            )
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
        if frame.columns != SOURCE_COLUMNS:
            raise BuildError(f"{file_name} has columns {frame.columns}, expected {SOURCE_COLUMNS}")
        frames.append(
            frame.with_columns(
                pl.lit(video).alias("video"),
                pl.lit(file_name).alias("source_file"),
                (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias("source_line"),
            )
        )
    return pl.concat(frames, how="vertical")


def drop_exact_duplicates(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop repeated rows that are identical in every source column; refuse other repeats."""
    key = [*SOURCE_COLUMNS, "video"]
    repeated_ids = raw.filter(pl.col("COMMENT_ID").is_duplicated())
    conflicting = (
        repeated_ids.group_by("COMMENT_ID")
        .agg(pl.struct(key).n_unique().alias("variants"))
        .filter(pl.col("variants") > 1)
    )
    if conflicting.height:
        ids = conflicting["COMMENT_ID"].sort().to_list()
        raise BuildError(
            f"{len(ids)} COMMENT_ID value(s) occur with different contents, e.g. {ids[:5]}; "
            "decide which row is right before rebuilding"
        )
    keep = raw.select(pl.struct(key).is_first_distinct()).to_series()
    return raw.filter(keep), raw.filter(~keep)


def parse_dates(raw: pl.DataFrame) -> pl.Series:
    """Parse DATE with every known format; empty cells become null, anything else must parse."""
    date = pl.col("DATE").str.strip_chars()
    parsed = raw.select(
        pl.coalesce(
            [date.str.to_datetime(fmt, strict=False, time_unit="us") for fmt in DATE_FORMATS]
        ).alias("published_at")
    ).to_series()
    present = raw["DATE"].str.strip_chars().fill_null("") != ""
    unparsed = raw.filter(present & parsed.is_null())
    if unparsed.height:
        examples = unparsed.select("source_file", "source_line", "DATE").head(5).rows()
        raise BuildError(
            f"{unparsed.height} DATE value(s) match none of {DATE_FORMATS}, e.g. {examples}; "
            "add their format to DATE_FORMATS"
        )
    return parsed


def build(source: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the bundled table and the exact-duplicate rows that were dropped."""
    raw = read_source(source)
    bad_class = raw.filter(~pl.col("CLASS").is_in(["0", "1"]))
    if bad_class.height:
        examples = bad_class.select("source_file", "source_line", "CLASS").head(5).rows()
        raise BuildError(f"CLASS must be 0 (ham) or 1 (spam); found {examples}")
    missing = raw.filter(pl.col("COMMENT_ID").is_null() | pl.col("CONTENT").is_null())
    if missing.height:
        examples = missing.select("source_file", "source_line").head(5).rows()
        raise BuildError(f"rows without COMMENT_ID or CONTENT at {examples}")
    deduped, dropped = drop_exact_duplicates(raw)
    table = deduped.select(
        pl.col("COMMENT_ID").alias("asset_id"),
        pl.col("CONTENT").alias("text"),
        pl.col("AUTHOR").alias("author"),
        parse_dates(deduped),
        pl.col("video"),
        pl.col("CLASS").cast(pl.Int8).alias("label"),
    )
    if table["asset_id"].n_unique() != table.height:
        raise BuildError("asset_id is still not unique after dropping exact duplicates")
    return table, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    try:
        table, dropped = build(args.source)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.write_parquet(args.output, compression="zstd", compression_level=19, statistics=True)
    print(f"wrote {table.height} rows to {args.output}")
    print(
        f"dropped {dropped.height} exact duplicate row(s): "
        + ", ".join(
            f"{r['COMMENT_ID']} ({r['source_file']} line {r['source_line']})"
            for r in dropped.iter_rows(named=True)
        )
    )
    print(f"null published_at (empty DATE): {table['published_at'].null_count()}")
    print(table.group_by("video", "label", maintain_order=True).len())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
