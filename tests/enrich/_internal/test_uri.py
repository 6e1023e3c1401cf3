"""Locations: local paths and object-store URIs behave alike (the S3 side on moto's server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrich._internal.uri import Location, fsspec_options, is_remote, join
from enrich.errors import InputError


def test_names_parents_and_equality_work_as_on_paths(tmp_path):
    table = Location.of("s3://lake/out/enriched", {"aws_region": "x"})
    assert (table.name, str(table.parent), str(table / "a.json")) == (
        "enriched",
        "s3://lake/out",
        "s3://lake/out/enriched/a.json",
    )
    assert table.with_name("enriched_runs").storage_options == {"aws_region": "x"}
    assert Location.of("s3://lake/out/enriched/") == table  # a trailing slash is the same
    local = Location.of(tmp_path / "t")
    assert local == tmp_path / "t" and Path(local) == tmp_path / "t" and not local.is_remote
    assert Location.of((tmp_path / "t").as_uri()) == local  # file:// is a local path
    assert join("s3://b/", "x", "y.parquet") == "s3://b/x/y.parquet"
    assert is_remote("gs://b/t") and is_remote("az://c/t") and not is_remote("file:///t")
    with pytest.raises(TypeError):
        Path(table)  # no silent s3:/lake mangling
    with pytest.raises(InputError, match="whole bucket"):
        Location.of("s3://lake").with_name("lake_runs")


def test_storage_options_are_translated_for_each_fsspec_store():
    s3 = fsspec_options(
        "s3://b",
        {
            "AWS_ACCESS_KEY_ID": "k",
            "aws_secret_access_key": "s",
            "aws_endpoint_url": "http://127.0.0.1:9000",
            "aws_region": "eu-west-1",
            "aws_allow_http": "true",
            "aws_conditional_put": "etag",
        },
    )
    assert s3 == {
        "key": "k",
        "secret": "s",
        "endpoint_url": "http://127.0.0.1:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert fsspec_options("gs://b", {"google_service_account": "/k.json"}) == {"token": "/k.json"}
    azure = fsspec_options(
        "az://c", {"azure_storage_account_name": "acct", "azure_storage_account_key": "key"}
    )
    assert azure == {"account_name": "acct", "account_key": "key"}


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> Location:
    if request.param == "local":
        return Location.of(tmp_path / "root")
    bucket, options = request.getfixturevalue("s3_bucket")
    return Location.of(f"{bucket}/root", options)


def test_file_operations_on_a_folder_and_a_bucket(root, tmp_path):
    report = root / "reports" / "r1.json"
    assert not report.exists() and list((root / "reports").iterdir()) == []
    report.write_text('{"ok": true}')
    (root / "reports" / "r1.html").write_bytes(b"<html>")
    assert report.is_file() and (root / "reports").is_dir() and report.read_text() == '{"ok": true}'
    assert sorted(f.name for f in (root / "reports").glob("*.json")) == ["r1.json"]
    report.rename(root / "aside" / "r1.json")
    assert not report.exists() and (root / "aside" / "r1.json").is_file()

    def snapshot(folder: Path) -> None:
        (folder / "deltas").mkdir(parents=True)
        (folder / "index.json").write_text("{}")
        (folder / "deltas" / "a.npz").write_bytes(b"12")

    index = (root / "index" / "run1").upload_folder(snapshot)
    local = index.download_folder(tmp_path / "copy")
    assert (local / "index.json").read_text() == "{}" and (local / "deltas" / "a.npz").is_file()
    index.rmtree()
    assert not (root / "index" / "run1" / "index.json").exists()
    (root / "reports" / "r1.html").unlink()
    (root / "reports" / "r1.html").unlink()  # missing: nothing happens
    assert not (root / "reports" / "r1.html").exists()


def test_a_failed_write_leaves_nothing_behind(root):
    target = root / "reports" / "r2.json"

    def fail(partial: Path) -> None:
        partial.write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        target.write_file(fail)
    assert not target.exists()
    assert [f.name for f in (root / "reports").iterdir()] == []
