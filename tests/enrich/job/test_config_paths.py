"""Where a job writes is checked when the job file is read (issue 13, items 12 and 14)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from enrich.job.config import JobConfigError, available_cores, load_job_config


def job(tmp_path: Path, *, output: str, source: str = "data", extra: str = "") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "job.toml"
    path.write_text(
        f"""
[source]
path = {source!r}
text_column = "text"

[labeling_functions]
sources = ["labeling_functions.packs.youtube_spam:LFS"]
classes = ["HAM", "SPAM"]

[output]
{output}
{extra}
"""
    )
    return path


@pytest.mark.parametrize(
    ("output", "source", "expected"),
    [
        ('path = ""', "data", "output.path: must name a folder"),
        ('path = "."', "data", "output.path: must name a folder"),
        ('path = "data/enriched"', "data", "is inside the source 'data'"),
        ('path = "data/sub/enriched"', "data/**/*.parquet", "is inside the source"),
        ('path = "out/t"\nreports_dir = "data/r"', "data", "output.reports_dir: "),
        ('path = "out/t"\nruns_path = "out/t"', "data", "output.runs_path: "),
        ('path = "/"', "data", "output.path: '/' is the filesystem root"),
    ],
)
def test_bad_output_locations_are_refused_with_one_clear_line(tmp_path, output, source, expected):
    with pytest.raises(JobConfigError) as caught:
        load_job_config(job(tmp_path, output=output, source=source))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_output_path_that_is_a_file_or_under_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(JobConfigError, match=r"output.path: '.*taken' is a file, not a folder"):
        load_job_config(job(tmp_path, output='path = "taken"'))
    with pytest.raises(JobConfigError, match=r"the parent '.*taken' of '.*taken/t' is a file"):
        load_job_config(job(tmp_path, output='path = "taken/t"'))


def test_outputs_beside_the_source_are_fine(tmp_path):
    config = load_job_config(job(tmp_path, output='path = "out/enriched"'))
    assert Path(config.output.path) == tmp_path / "out" / "enriched"
    one_file = load_job_config(job(tmp_path, output='path = "data/t"', source="data/a.parquet"))
    assert one_file.output.path.endswith("data/t")


def test_n_jobs_is_capped_at_the_cores_available(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="enrich.job.config"):
        config = load_job_config(
            job(tmp_path, output='path = "out/t"', extra="[engine]\nn_jobs = 100000000000000000000")
        )
    assert config.engine.n_jobs == available_cores()
    assert "more than the" in caplog.text and "cores available" in caplog.text


def test_retention_has_sane_defaults(tmp_path):
    config = load_job_config(job(tmp_path, output='path = "out/t"'))
    assert config.retention.enabled and config.retention.keep_reports >= 1
    assert config.retention.vacuum_after_days >= 1


# -- object-store URIs ------------------------------------------------------------------------
def test_uris_are_kept_as_uris_and_local_paths_made_absolute(tmp_path):
    from enrich.io.store import JobPaths

    config = load_job_config(
        job(
            tmp_path,
            source="s3://lake/assets/*.parquet",
            output='path = "s3://lake/out/enriched"\nreports_dir = "reports"',
            extra='[embeddings]\nenabled = true\ncache_path = "gs://cache/emb"',
        )
    )
    assert config.source.paths == ["s3://lake/assets/*.parquet"]
    assert config.output.path == "s3://lake/out/enriched"
    assert config.output.reports_dir == str(tmp_path / "reports")
    paths = JobPaths.for_table(
        config.output.path,
        reports=config.output.reports_dir,
        embeddings=config.embeddings.cache_path,
    )
    assert str(paths.runs) == "s3://lake/out/enriched_runs" and paths.runs.is_remote
    assert str(paths.embeddings) == "gs://cache/emb" and not paths.reports.is_remote


def test_an_output_uri_inside_the_source_uri_is_refused(tmp_path):
    with pytest.raises(JobConfigError, match="is inside the source 's3://lake/data/"):
        load_job_config(
            job(
                tmp_path, source="s3://lake/data/**/*.parquet", output='path = "s3://lake/data/out"'
            )
        )
    load_job_config(job(tmp_path, source="s3://lake/data/*.parquet", output='path = "s3://lake/t"'))


def test_storage_options_merge_by_side_and_secrets_never_reach_a_record(tmp_path, monkeypatch):
    from enrich._internal.uri import Location

    monkeypatch.setenv("LAKE_SECRET", "s3cr3t")
    config = load_job_config(
        job(
            tmp_path,
            source="s3://in/a.parquet",
            output='path = "s3://out/t"\nstorage_options = { aws_region = "eu-west-3" }',
            extra=(
                "[storage]\noptions = { aws_region = 'us-east-1', aws_allow_http = true, "
                "aws_access_key_id = 'AKIA-LITERAL', aws_secret_access_key = '${LAKE_SECRET}' }"
            ),
        )
    )
    output = config.storage_options_for("output")
    assert output["aws_region"] == "eu-west-3" and output["aws_allow_http"] == "true"
    assert config.storage_options_for("source")["aws_region"] == "us-east-1"
    assert Location.of("s3://out/t", output).delta_options()["aws_secret_access_key"] == "s3cr3t"
    dumped = str(config.model_dump(mode="json"))
    assert "AKIA-LITERAL" not in dumped and "s3cr3t" not in dumped
    assert "'***'" in dumped and "${LAKE_SECRET}" in dumped
    assert config.config_hash() == config.resolved(tmp_path).config_hash()


def test_an_unset_credential_variable_and_an_unknown_scheme_are_named(tmp_path, monkeypatch):
    from enrich._internal.uri import Location
    from enrich.errors import InputError

    monkeypatch.delenv("NO_SUCH_VARIABLE_SET", raising=False)
    where = Location.of("s3://b/t", {"aws_secret_access_key": "${NO_SUCH_VARIABLE_SET}"})
    with pytest.raises(InputError, match="NO_SUCH_VARIABLE_SET, which is not set"):
        where.delta_options()
    with pytest.raises(InputError, match="scheme 'ftp'"):
        Location.of("ftp://host/t")
