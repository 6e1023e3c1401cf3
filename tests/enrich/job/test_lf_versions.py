"""Stale votes: a job re-runs an LF when anything it depends on changes (issue 13, item 1)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from enrich.cli import app
from enrich.errors import InputError
from enrich.job.config import load_job_config
from enrich.job.run import run_job

LF_FILE = """
from labeling_functions import ABSTAIN, labeling_function

NEG_WORDS = {words!r}


def is_negative(text):
    return any(word in text.lower() for word in NEG_WORDS)


@labeling_function(label="NEG")
def negative_words(x):
    return "NEG" if is_negative(x.text) else ABSTAIN


@labeling_function(label="POS")
def positive_words(x):
    return "POS" if "great" in x.text.lower() or "love" in x.text.lower() else ABSTAIN
"""

JOB = """
[source]
path = "data"
text_column = "text"

[labeling_functions]
sources = ["lfs.py"]
classes = ["NEG", "POS"]

[gaps]
enabled = false

[review]
enabled = false

[output]
path = "out/enriched"
"""

TEXTS = [
    "slow service!",
    "awful food",
    "great place",
    "love it",
    "bad and slow",
    "really great",
    "terrible wait",
    "nice staff, love the food",
]


def _job(tmp_path: Path, words: list[str]) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    pl.DataFrame({"asset_id": [f"a{i}" for i in range(len(TEXTS))], "text": TEXTS}).write_parquet(
        tmp_path / "data" / "part-0.parquet"
    )
    (tmp_path / "lfs.py").write_text(LF_FILE.format(words=words))
    job = tmp_path / "job.toml"
    job.write_text(JOB)
    return job


def _votes(table: Path) -> dict[str, int]:
    from deltalake import DeltaTable

    frame = pl.from_arrow(DeltaTable(str(table)).to_pyarrow_table())
    column = next(c for c in frame.columns if "negative_words" in c)
    return dict(zip(frame.get_column("asset_id"), frame.get_column(column), strict=True))


def test_editing_a_module_constant_a_helper_reads_re_runs_the_lf(tmp_path):
    job = _job(tmp_path, ["bad", "awful", "terrible"])
    first = run_job(load_job_config(job), progress=False)
    assert first.record["lfs_rerun"] == ["negative_words", "positive_words"]
    before = _votes(first.table_path)
    assert before["a0"] == -1  # "slow service!" is not negative yet

    unchanged = run_job(load_job_config(job), progress=False)
    assert unchanged.record["lfs_rerun"] == []

    (tmp_path / "lfs.py").write_text(LF_FILE.format(words=["bad", "awful", "terrible", "slow"]))
    after = run_job(load_job_config(job), progress=False)
    assert after.record["lfs_rerun"] == ["negative_words"]
    votes = _votes(after.table_path)
    assert votes["a0"] == 0  # NEG now, as enrich.apply gives
    assert votes["a2"] == before["a2"]


def test_rerun_lfs_forces_a_re_run_and_names_are_checked(tmp_path):
    job = _job(tmp_path, ["bad"])
    config = load_job_config(job)
    run_job(config, progress=False)
    forced = run_job(config, progress=False, rerun_lfs=["positive_words"])
    assert forced.record["lfs_rerun"] == ["positive_words"]
    assert forced.counts["n_revoted"] == len(TEXTS)
    every = run_job(config, progress=False, rerun_lfs="all")
    assert every.record["lfs_rerun"] == ["negative_words", "positive_words"]
    with pytest.raises(InputError, match=r"no LF of that name.*negative_words"):
        run_job(config, progress=False, rerun_lfs=["negative_wrds"])


def test_cli_rerun_lfs(tmp_path):
    job = _job(tmp_path, ["bad"])
    runner = CliRunner()
    assert runner.invoke(app, ["--quiet", "run", str(job)]).exit_code == 0
    result = runner.invoke(app, ["--quiet", "run", str(job), "--rerun-lfs", "negative_words"])
    assert result.exit_code == 0, result.output
    record = run_job(load_job_config(job), progress=False).record
    assert record["lfs_rerun"] == []
    failed = runner.invoke(app, ["--quiet", "run", str(job), "--rerun-lfs", "nope"])
    assert failed.exit_code != 0 and "no LF of that name" in failed.output


def test_an_lf_that_cannot_be_hashed_is_re_run_every_run_with_a_warning(tmp_path):
    job = _job(tmp_path, ["bad"])
    lf_file = tmp_path / "lfs.py"
    lf_file.write_text(
        lf_file.read_text()
        + """
import threading

LOCK = threading.Lock()


@labeling_function(label="NEG")
def locked(x):
    with LOCK:
        return "NEG" if "terrible" in x.text else ABSTAIN
"""
    )
    config = load_job_config(job)
    run_job(config, progress=False)
    again = run_job(config, progress=False)
    assert again.record["lfs_rerun"] == ["locked"]
    assert any("'locked' is re-run" in w and "lock" in w for w in again.warnings)
