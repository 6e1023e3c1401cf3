import tomllib
from pathlib import Path

import pytest

from enrich.errors import InputError
from enrich.job.config import (
    JobConfig,
    JobConfigError,
    example_job_toml,
    load_job_config,
)
from enrich.labeling.sources import split_lf_source

MINIMAL = """
[source]
path = "data/*.parquet"
text_column = "text"

[labeling_functions]
sources = ["labeling_functions.packs.youtube_spam:LFS", "lfs/mine.py:EXTRA"]
classes = ["HAM", "SPAM"]

[output]
path = "out/enriched"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def test_example_job_is_valid_and_points_at_the_bundled_data(tmp_path):
    config = load_job_config(write(tmp_path, example_job_toml()))
    assert Path(config.source.paths[0]).name == "youtube_spam.parquet"
    assert Path(config.source.paths[0]).is_file()
    assert config.labeling_functions.classes == ["HAM", "SPAM"]
    assert config.gold.column == "label" and not config.gold.use_in_fit
    assert config.engine.kind == "local"
    assert Path(config.output.path) == tmp_path / "out/youtube/enriched"


def test_example_job_documents_every_key_of_every_section():
    parsed = tomllib.loads(example_job_toml())
    for section, model in JobConfig.model_fields.items():
        assert section in parsed, section
        keys = model.annotation.model_fields
        text = example_job_toml()
        for key in keys:
            assert key in text, f"{section}.{key} is not documented in the example job"


def test_relative_paths_are_read_from_the_job_files_folder(tmp_path):
    config = load_job_config(write(tmp_path, MINIMAL))
    assert config.source.paths == [str(tmp_path / "data/*.parquet")]
    assert config.output.path == str(tmp_path / "out/enriched")
    assert config.labeling_functions.sources == [
        "labeling_functions.packs.youtube_spam:LFS",
        f"{tmp_path / 'lfs/mine.py'}:EXTRA",
    ]


def test_unknown_key_names_its_path_and_lists_allowed_keys(tmp_path):
    text = MINIMAL.replace('path = "out/enriched"', 'path = "out/enriched"\npth = 1')
    with pytest.raises(JobConfigError) as caught:
        load_job_config(write(tmp_path, text))
    message = str(caught.value)
    assert "output.pth: unknown key" in message
    assert "path, runs_path, reports_dir, proba_tolerance, lock_timeout" in message
    assert str(tmp_path / "job.toml") in message


def test_bad_choice_lists_what_is_allowed(tmp_path):
    text = MINIMAL + '\n[engine]\nkind = "spark"\n'
    with pytest.raises(
        JobConfigError, match=r"engine.kind: 'spark' is not allowed; allowed: 'local' or 'dask'"
    ):
        load_job_config(write(tmp_path, text))


def test_every_problem_is_reported_on_one_line(tmp_path):
    text = MINIMAL.replace('classes = ["HAM", "SPAM"]', "").replace(
        "[output]", "[output]\nproba_tolerance = 2\n"
    )
    with pytest.raises(JobConfigError) as caught:
        load_job_config(write(tmp_path, text))
    message = str(caught.value)
    assert "2 problems" in message and "\n" not in message
    assert "labeling_functions.classes: required" in message
    assert "output.proba_tolerance" in message and "(got 2)" in message


def test_missing_section_and_wrong_types_are_named(tmp_path):
    text = MINIMAL.split("[output]")[0] + '\n[engine]\nn_workers = "two"\n'
    with pytest.raises(JobConfigError) as caught:
        load_job_config(write(tmp_path, text))
    assert "output: required" in str(caught.value)
    assert "engine.n_workers" in str(caught.value)


def test_embeddings_need_an_input_column(tmp_path):
    text = MINIMAL.replace('text_column = "text"', "") + "\n[embeddings]\nenabled = true\n"
    with pytest.raises(JobConfigError, match=r"embeddings\.encoder: .*text_column"):
        load_job_config(write(tmp_path, text))
    text = MINIMAL + '\n[embeddings]\nenabled = true\nencoder = "precomputed"\n'
    with pytest.raises(JobConfigError, match=r"embeddings\.encoder: encoder 'precomputed' needs"):
        load_job_config(write(tmp_path, text))


def test_embedding_defaults_follow_the_source(tmp_path):
    config = load_job_config(write(tmp_path, MINIMAL + "\n[embeddings]\nenabled = true\n"))
    assert config.encoder_kind == "text" and config.embedding_input_column == "text"
    assert load_job_config(write(tmp_path, MINIMAL)).encoder_kind is None


def test_duplicate_classes_and_zero_jobs_are_refused(tmp_path):
    text = MINIMAL.replace('["HAM", "SPAM"]', '["HAM", "HAM"]')
    with pytest.raises(JobConfigError, match=r"labeling_functions\.classes: must be unique"):
        load_job_config(write(tmp_path, text))
    with pytest.raises(JobConfigError, match=r"engine\.n_jobs: must be a positive"):
        load_job_config(write(tmp_path, MINIMAL + "\n[engine]\nn_jobs = 0\n"))


def test_invalid_toml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(JobConfigError, match="not valid TOML"):
        load_job_config(write(tmp_path, "[source\npath = 1"))
    with pytest.raises(JobConfigError, match="does not exist; write one with `enrich init"):
        load_job_config(tmp_path / "nope.toml")
    assert issubclass(JobConfigError, InputError)


def test_config_hash_is_stable_and_changes_with_the_config(tmp_path):
    a = load_job_config(write(tmp_path, MINIMAL)).config_hash()
    assert a == load_job_config(write(tmp_path, MINIMAL)).config_hash()
    changed = MINIMAL + "\n[label_model]\nrandom_state = 7\n"
    assert a != load_job_config(write(tmp_path, changed)).config_hash()


def test_split_lf_source():
    assert split_lf_source("pkg.mod:LFS") == ("pkg.mod", "LFS", False)
    assert split_lf_source("pkg.mod") == ("pkg.mod", None, False)
    assert split_lf_source("lfs.py") == ("lfs.py", None, True)
    assert split_lf_source("dir/lfs.py:EXTRA") == ("dir/lfs.py", "EXTRA", True)
