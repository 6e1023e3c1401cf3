import json
import subprocess
import sys

import polars as pl
from typer.testing import CliRunner

from enrich.cli import app
from enrich.datasets import load_youtube_spam

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output and "--debug" in result.output


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from enrich.cli import app; "
        "heavy = {'torch', 'spacy', 'faiss', 'sentence_transformers', 'dask'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_writes_the_enriched_table_and_run_record(tmp_path):
    result = runner.invoke(app, ["--quiet", "demo", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    enriched = pl.read_parquet(tmp_path / "out" / "enriched.parquet")
    data = load_youtube_spam()
    assert enriched.height == data.height
    assert enriched.get_column("asset_id").to_list() == data.get_column("asset_id").to_list()
    for column in ["label", "label_name", "proba_HAM", "proba_SPAM", "confidence", "run_id"]:
        assert column in enriched.columns
    assert {c for c in enriched.columns if c.startswith("vote_")} >= {"vote_check_out", "vote_link"}
    assert enriched.get_column("run_id").n_unique() == 1
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["n_assets"] == data.height
    assert record["gold_accuracy"] > 0.85
    assert record["gold_accuracy"] >= record["majority_vote_accuracy"]


def test_errors_print_one_line_and_exit_non_zero(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["--quiet", "demo", "--output", str(blocker / "out")])
    assert result.exit_code == 1
    assert result.output.startswith("enrich: error:")
    assert len(result.output.strip().splitlines()) == 1
