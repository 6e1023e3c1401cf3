"""The job config picks the text encoder's backend, precision and device (issue 19)."""

from pathlib import Path

import pytest

from enrich.job.config import JobConfigError, load_job_config
from enrich.job.index import _encoder_spec

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"

[labeling_functions]
sources = ["labeling_functions.packs.youtube_spam:LFS"]
classes = ["HAM", "SPAM"]

[output]
path = "out/enriched"

[embeddings]
enabled = true
"""


def load(tmp_path: Path, extra: str):
    path = tmp_path / "job.toml"
    path.write_text(JOB + extra)
    return load_job_config(path)


def test_backend_precision_and_device_reach_the_encoder(tmp_path):
    config = load(tmp_path, 'backend = "onnx"\ndevice = "cpu"\n')
    spec = _encoder_spec(config, paths=None)  # type: ignore[arg-type]
    encoder = spec.build()
    assert (encoder.backend, encoder.precision, encoder.device) == ("onnx", "auto", "cpu")
    assert encoder.id.endswith(":onnx-float32")  # a cache never mixes its vectors with torch's
    default = _encoder_spec(load(tmp_path, ""), paths=None).build()  # type: ignore[arg-type]
    assert default.backend == "torch" and not default.id.endswith("int8")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('backend = "onnx"\nprecision = "float16"\n', r"embeddings\.precision: 'float16'.*int8"),
        ('backend = "tensorrt"\n', r"embeddings\.backend"),
        ("workers = -1\n", r"embeddings\.workers"),
    ],
)
def test_bad_encoder_options_name_the_key(tmp_path, extra, message):
    with pytest.raises(JobConfigError, match=message):
        load(tmp_path, extra)
