"""The CLI prints user data (asset ids, labels, LF names) as plain text: no terminal escapes,
no Rich markup, and run ids on one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from enrich.cli import app
from enrich.io.lineage import history, runs
from enrich.io.store import commit_enriched

runner = CliRunner()
OSC_ID = "\x1b]0;pwned\x07evil"  # sets the terminal title when printed raw
MARKUP_ID = "[bold red]boom[/bold red]"
RUN_IDS = ("20261204T010203Z-aaaaaa", "20261205T010203Z-bbbbbb")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "t"
    ids = [OSC_ID, MARKUP_ID, "plain"]
    for version, (run_id, labels) in enumerate(
        zip(RUN_IDS, (["HAM", "HAM", "SPAM"], ["SPAM", "SPAM", None]), strict=True)
    ):
        rows = pl.DataFrame(
            {
                "asset_id": ids,
                "label_name": labels,
                "confidence": [0.9, 0.8, 0.7 if labels[2] else None],
                "vote_[blink]lf\x1b[5m": [1, 1, -1],
                "run_id": [run_id] * 3,
            },
            schema_overrides={"label_name": pl.String, "confidence": pl.Float64},
        )
        commit_enriched(
            path,
            rows,
            mode="create" if version == 0 else "overwrite",
            read_version=None if version == 0 else version - 1,
            record={
                "run_id": run_id,
                "finished_at": f"2026-12-0{4 + version}T01:02:03+00:00",
                "classes": ["HAM", "SPAM"],
                "metrics": {"lfs": [{"lf": "[blink]lf\x1b[5m", "coverage": 0.5}]},
            },
        )
    return path


def _no_escapes(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text, repr(text)


def test_diff_prints_ids_as_plain_text(table: Path) -> None:
    result = runner.invoke(app, ["diff", "v0", "v1", "--table", str(table)])
    assert result.exit_code == 0, result.output
    _no_escapes(result.output)
    assert "\\x1b]0;pwned\\x07evil" in result.output  # shown, escaped
    assert MARKUP_ID in result.output
    assert "SPAM -> -" in result.output or "-> -" in result.output  # the label that went null


@pytest.mark.parametrize("asset_id", [OSC_ID, MARKUP_ID])
def test_history_prints_ids_and_lf_names_without_markup(table: Path, asset_id: str) -> None:
    result = runner.invoke(app, ["history", asset_id, "--table", str(table)])
    assert result.exit_code == 0, result.output
    _no_escapes(result.output)
    assert "[bold red]boom[/bold red]" in result.output or asset_id == OSC_ID
    assert "[blink]lf" in result.output  # an LF name with markup is printed as it is


def test_run_ids_are_never_wrapped(table: Path) -> None:
    result = runner.invoke(app, ["runs", "--table", str(table)])
    assert result.exit_code == 0, result.output
    for run_id in RUN_IDS:
        assert run_id in result.output  # on one line, not folded over two
    shown = runner.invoke(app, ["history", "plain", "--table", str(table)])
    assert all(run_id in shown.output for run_id in RUN_IDS), shown.output


def test_plain_rendering_escapes_control_characters(table: Path) -> None:
    _no_escapes(str(history(table, OSC_ID)))
    _no_escapes(str(runs(table)))


def test_error_lines_escape_user_text(tmp_path: Path) -> None:
    bad = tmp_path / "x\x1b]0;t\x07"
    result = runner.invoke(app, ["runs", "--table", str(bad)])
    assert result.exit_code == 1
    _no_escapes(result.output)


def test_quiet_or_a_log_turns_every_progress_bar_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from enrich.cli import _progress_bars

    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(name, raising=False)
    assert _progress_bars(quiet=False, terminal=True) is None  # a person at a terminal
    assert "TQDM_DISABLE" not in os.environ
    assert _progress_bars(quiet=False, terminal=False) is False  # stderr is a log
    assert os.environ["TQDM_DISABLE"] == "1"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


def test_an_in_process_command_gives_the_environment_back(
    table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    result = runner.invoke(app, ["--quiet", "runs", "--table", str(table)])
    assert result.exit_code == 0, result.output
    assert "TQDM_DISABLE" not in os.environ


JOB_WITH_EMBEDDINGS = """
[source]
path = "data/*.parquet"
text_column = "text"
[embeddings]
enabled = true
[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]
[output]
path = "out/enriched"
"""


@pytest.mark.slow
@pytest.mark.parametrize("quiet", [True, False])
def test_a_job_run_writes_no_bars_into_a_log(tmp_path: Path, quiet: bool) -> None:
    """stderr to a file: no carriage-return bar, transformers' weight-loading one included."""
    from enrich.datasets import load_youtube_spam

    (tmp_path / "data").mkdir()
    load_youtube_spam().head(40).write_parquet(tmp_path / "data" / "a.parquet")
    (tmp_path / "lfs.py").write_text(
        "from labeling_functions import keyword_lf\n"
        'check = keyword_lf("check", ["check out", "subscribe"], label="SPAM")\n'
        'song = keyword_lf("song", ["song", "love"], label="HAM")\n'
    )
    (tmp_path / "job.toml").write_text(JOB_WITH_EMBEDDINGS)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")
    }
    args = [sys.executable, "-m", "enrich.cli", *(["--quiet"] if quiet else []), "run", "job.toml"]
    with open(tmp_path / "log.txt", "wb") as log:
        done = subprocess.run(args, cwd=tmp_path, stdout=log, stderr=log, env=env, timeout=600)
    text = (tmp_path / "log.txt").read_text(errors="replace")
    assert done.returncode == 0, text
    assert "\r" not in text, text[:2000]
    assert "Loading weights" not in text
