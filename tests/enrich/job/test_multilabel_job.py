"""The nightly job with a multi-label task (attributes of the bundled MNIST digits) and with
several named tasks over the same assets (spam and topics of the YouTube comments)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import ndimage

from enrich.datasets import load_mnist_sample
from enrich.errors import InputError, JobConfigError
from enrich.io.store import read_table
from enrich.job.config import JobConfig, load_job_config
from enrich.job.end_model_step import linear_proba
from enrich.job.run import run_job
from enrich.job.task_votes import decode_votes, encode_votes
from enrich.labeling.engines import DaskEngine

LABELS = ["even", "at_least_five", "closed_loop"]
LOOPS = {0, 4, 6, 8, 9}

DIGIT_LFS = """
import polars as pl
from labeling_functions import Against, expression_lf, labeling_function

has_hole = expression_lf("has_hole", pl.col("holes") >= 1, label="closed_loop")
no_hole = expression_lf("no_hole", pl.col("holes") == 0, label=Against("closed_loop"))
two_holes = expression_lf("two_holes", pl.col("holes") >= 2, label=("even", "at_least_five"))
thin = expression_lf("thin", pl.col("width") <= 8,
                     label=(Against("even"), Against("at_least_five"), Against("closed_loop")))
top_heavy = expression_lf("top_heavy", pl.col("top_share") >= 0.6, label="at_least_five")
bottom_heavy = expression_lf("bottom_heavy", pl.col("top_share") <= 0.42,
                             label=Against("at_least_five"))

@labeling_function(label=("even", Against("even")))
def heavy_ink(x):
    if x.ink >= 0.2:
        return {"even": True}
    if x.ink <= 0.1:
        return {"even": False}
    return None
"""

DIGIT_JOB = """
[source]
path = "data/*.parquet"

[labeling_functions]
sources = ["lfs.py"]
task = "multilabel"
labels = ["even", "at_least_five", "closed_loop"]

[gold]
column = "attributes"

[output]
path = "out/digits"
"""

TOPIC_LFS = """
from labeling_functions import ABSTAIN, Against, keyword_lf, labeling_function, regex_lf

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
nice = keyword_lf("nice", ["song", "love this", "best"], label="HAM")
promo = keyword_lf("promo", ["check out", "subscribe", "my channel", "please"], label="promotion")
link = regex_lf("link", r"https?://|www\\\\.", label="link", ignore_case=True)
music = keyword_lf("music", ["song", "music", "dance"], label=("music", Against("promotion")))

@labeling_function(label=("promotion", "link"))
def short(x):
    return {"promotion": False, "link": False} if len(x.text or "") < 20 else ABSTAIN

SPAM = [check_out, nice]
TOPICS = [promo, link, music, short]
"""

TASKS_JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
slice_columns = ["video"]

[labeling_functions.tasks.spam]
sources = ["lfs.py:SPAM"]
classes = ["HAM", "SPAM"]
gold_column = "label"

[labeling_functions.tasks.topics]
sources = ["lfs.py:TOPICS"]
task = "multilabel"
labels = ["promotion", "link", "music"]

[gaps]
min_slice_size = 10

[output]
path = "out/enriched"
"""


def _holes(image: np.ndarray) -> int:
    regions, count = ndimage.label(image < 128)
    border = set(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]).tolist())
    sizes = ndimage.sum_labels(np.ones_like(regions), regions, range(count + 1))
    return sum(1 for r in range(1, count + 1) if r not in border and sizes[r] >= 4)


@pytest.fixture(scope="module")
def digits() -> pl.DataFrame:
    """The 2,000 MNIST digits: pixel features and the gold attribute sets."""
    sample = load_mnist_sample()
    images, labels = sample.images, sample.labels.astype(int)
    ink = images >= 128
    return pl.DataFrame(
        {
            "asset_id": np.arange(len(images)),
            "holes": [_holes(image) for image in images],
            "ink": ink.mean(axis=(1, 2)),
            "top_share": ink[:, :14].sum(axis=(1, 2)) / np.maximum(ink.sum(axis=(1, 2)), 1),
            "width": ink.any(axis=1).sum(axis=1),
            "attributes": [
                [n for n, has in zip(LABELS, (d % 2 == 0, d >= 5, d in LOOPS), strict=True) if has]
                for d in labels
            ],
        }
    )


def digit_job(root: Path, digits: pl.DataFrame, parts: dict[str, tuple[int, int]]) -> JobConfig:
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, (start, stop) in parts.items():
        digits.slice(start, stop - start).write_parquet(root / "data" / name)
    (root / "lfs.py").write_text(DIGIT_LFS)
    (root / "job.toml").write_text(DIGIT_JOB)
    return load_job_config(root / "job.toml")


def test_multilabel_job_full_run_then_one_percent_more_equals_a_run_from_scratch(tmp_path, digits):
    config = digit_job(tmp_path / "nightly", digits, {"a.parquet": (0, 1980)})
    first = run_job(config, progress=False)
    out = read_table(config.output.path)
    assert first.table_version == 0 and out.height == 1980
    assert out.schema["labels"] == pl.List(pl.String)
    assert out.schema["vote_thin"] == pl.List(pl.Int8) and out.schema["gold"] == pl.List(pl.Int8)
    assert {f"p_{label}" for label in LABELS} <= set(out.columns)
    assert set(out.get_column("labels").explode().drop_nulls().unique()) == set(LABELS)
    gold = first.record["tasks"]["task"]["metrics"]["gold"]
    assert gold["n_assets"] == 1980 and 0 < gold["macro_f1"] <= 1
    assert [r["label"] for r in gold["per_label"]] == LABELS

    digits.slice(1980, 20).write_parquet(tmp_path / "nightly" / "data" / "b.parquet")
    second = run_job(config, progress=False)
    counts = second.counts
    assert (counts["n_new"], counts["n_read"], counts["n_voted"], counts["n_revoted"]) == (
        20,
        20,
        20,
        0,
    )
    assert second.record["mode"] in ("merge", "append") and counts["n_written"] < 2000

    scratch_config = digit_job(tmp_path / "scratch", digits, {"a.parquet": (0, 2000)})
    scratch = run_job(scratch_config, progress=False)
    # the +1% run refits on every vote pattern: the model a run from scratch fits
    version = second.record["tasks"]["task"]["model"]["version"]
    assert version == scratch.record["tasks"]["task"]["model"]["version"]
    a = read_table(config.output.path).sort("asset_id")
    b = read_table(scratch_config.output.path).sort("asset_id")
    assert a.height == b.height == 2000
    exact = ["asset_id", "labels", "review", "uncertain_labels", "gold", "content_hash"]
    exact += [c for c in a.columns if c.startswith("vote_")]
    assert a.select(exact).equals(b.select(exact))
    for label in LABELS:
        moved = (a.get_column(f"p_{label}") - b.get_column(f"p_{label}")).abs().max()
        assert moved <= config.output.proba_tolerance
    again = run_job(config, progress=False)
    assert again.counts["n_read"] == 0 and again.counts["n_written"] == 0


def test_report_has_a_per_label_section(tmp_path, digits):
    config = digit_job(tmp_path, digits, {"a.parquet": (0, 600)})
    result = run_job(config, progress=False)
    page = Path(result.report_path).read_text()
    assert "The multilabel task" in page and "Per-label quality" in page
    assert "Labeling functions per label" in page and "macro F1" in page
    assert "Gaps per label" in page
    for label in LABELS:
        assert f"<td>{label}</td>" in page
    assert "<td>heavy_ink</td>" in page


def test_two_tasks_over_the_same_comments(tmp_path, make_job):
    config = load_job_config(make_job(tmp_path, job=TASKS_JOB, lfs=TOPIC_LFS))
    first = run_job(config, progress=False)
    out = read_table(config.output.path).sort("asset_id")
    assert out.height == 240
    for column in ["spam__label", "spam__proba_SPAM", "spam__needs_review", "spam__gold"]:
        assert column in out.columns
    for column in ["topics__p_promotion", "topics__p_music", "topics__labels", "topics__review"]:
        assert column in out.columns
    assert out.schema["vote_check_out"] == pl.Int32
    assert out.schema["vote_link"] == pl.List(pl.Int8)
    assert "label" not in out.columns and "labels" not in out.columns
    tasks = first.record["tasks"]
    assert (tasks["spam"]["kind"], tasks["topics"]["kind"]) == ("multiclass", "multilabel")
    assert tasks["spam"]["metrics"]["gold"]["n_gold"] == 240
    assert [r["label"] for r in tasks["topics"]["metrics"]["per_label"]] == [
        "promotion",
        "link",
        "music",
    ]
    assert first.record["classes"][:2] == ["spam.HAM", "spam.SPAM"]
    assert "topics.link" in first.message
    page = Path(first.report_path).read_text()
    assert "Task spam (multiclass)" in page and "Task topics (multilabel)" in page
    assert "Per-label quality" in page and "Class balance" in page
    queue = pl.read_parquet(first.review_path)
    assert set(queue.get_column("task")) == {"spam", "topics"}
    topics = queue.filter(pl.col("task") == "topics")
    assert set(topics.get_column("for_label")) <= {"promotion", "link", "music"}
    assert topics.height <= 500 and queue.filter(pl.col("task") == "spam").height <= 500

    again = run_job(config, progress=False)
    assert again.counts["n_read"] == 0 and again.counts["n_written"] == 0

    # an LF of one task changes: only it is re-run; the other task's columns stay as they were
    lfs = tmp_path / "lfs.py"
    lfs.write_text(lfs.read_text().replace('"dance"]', '"dance", "video"]'))
    third = run_job(config, progress=False)
    assert third.record["lfs_rerun"] == ["music"] and third.counts["n_revoted"] == 240
    after = read_table(config.output.path).sort("asset_id")
    spam = [c for c in out.columns if c.startswith("spam__")]
    assert after.select(spam).equals(out.select(spam))
    assert not after.get_column("vote_music").equals(out.get_column("vote_music"))


def test_two_tasks_on_a_dask_engine_give_the_local_table(tmp_path, make_job):
    local = load_job_config(make_job(tmp_path / "local", job=TASKS_JOB, lfs=TOPIC_LFS))
    remote = load_job_config(make_job(tmp_path / "dask", job=TASKS_JOB, lfs=TOPIC_LFS))
    run_job(local, progress=False)
    with DaskEngine(n_workers=1, processes=False, partition_size=50) as engine:
        result = run_job(remote, progress=False, engine=engine)
    assert any("do not read their own partitions" in w for w in result.warnings)
    a = read_table(local.output.path).sort("asset_id")
    b = read_table(remote.output.path).sort("asset_id")
    kept = [c for c in a.columns if c not in ("run_id", "created_at", "source_file")]
    assert a.select(kept).equals(b.select(kept))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": None}, r"labeling_functions\.labels: required, but missing"),
        (
            {"classes": ["a", "b"]},
            r"labeling_functions\.classes: not used by task = 'multilabel'",
        ),
        (
            {"labels": [f"l{i}" for i in range(20)]},
            r"labeling_functions\.labels: a multi-label task of a job has at most 19",
        ),
        ({"task": "several"}, r"labeling_functions\.task: 'several' is not allowed"),
    ],
)
def test_bad_multilabel_sections_name_the_problem(change, message):
    section = {"sources": ["lfs.py"], "task": "multilabel", "labels": LABELS}
    section = {k: v for k, v in {**section, **change}.items() if v is not None}
    with pytest.raises(JobConfigError, match=message):
        JobConfig.model_validate(
            {"source": {"path": "x"}, "labeling_functions": section, "output": {"path": "y"}}
        )


def test_bad_task_sections_name_the_problem(tmp_path):
    spam = '[labeling_functions.tasks.spam]\nsources = ["lfs.py:SPAM"]\nclasses = ["HAM", "SPAM"]\n'
    cases = [
        (TASKS_JOB.replace(spam, spam + "colour = 1\n"), r"tasks\.spam\.colour: unknown key; "),
        (
            TASKS_JOB.replace('task = "multilabel"\n', ""),
            r"tasks\.topics\.classes: required, but missing \(task = 'multiclass' names its "
            r"classes; labels is for task = 'multilabel'\)",
        ),
        (
            TASKS_JOB + '\n[gold]\ncolumn = "label"\n',
            r"gold\.column: with labeling_functions\.tasks each task names its own gold column",
        ),
        (
            TASKS_JOB.replace(
                "[labeling_functions.tasks.spam]",
                '[labeling_functions]\nsources = ["lfs.py"]\n\n[labeling_functions.tasks.spam]',
            ),
            r"labeling_functions\.sources: with labeling_functions\.tasks each task holds",
        ),
        (
            TASKS_JOB + "\n[end_model]\nenabled = true\n",
            r"end_model\.feature_columns: the end model is enabled but has no features",
        ),
        (
            TASKS_JOB.replace("tasks.topics]", "tasks.top-ics]"),
            r"'top-ics' is not a task name",
        ),
    ]
    for text, message in cases:
        (tmp_path / "job.toml").write_text(text)
        with pytest.raises(JobConfigError, match=message):
            load_job_config(tmp_path / "job.toml")


def test_bad_inputs_of_a_multilabel_job_are_refused_before_writing(tmp_path, make_job, digits):
    # one LF name in two tasks
    twice = TOPIC_LFS.replace("SPAM = [check_out, nice]", "SPAM = [check_out, nice, link]")
    config = load_job_config(make_job(tmp_path / "a", job=TASKS_JOB, lfs=twice))
    with pytest.raises(InputError, match=r"'link' is in tasks 'spam' and 'topics'; rename one"):
        run_job(config, progress=False)
    # a multi-label gold column that is not a list of labels
    text = TASKS_JOB.replace(
        'labels = ["promotion", "link", "music"]',
        'labels = ["promotion", "link", "music"]\ngold_column = "video"',
    )
    config = load_job_config(make_job(tmp_path / "b", job=text, lfs=TOPIC_LFS))
    with pytest.raises(InputError, match=r"tasks\.topics\.gold_column 'video' is String; a mul"):
        run_job(config, progress=False)
    assert not Path(config.output.path).exists()
    # gold naming a label the task does not have
    edited = digits.with_columns(
        pl.when(pl.col("asset_id") == 3)
        .then(pl.lit(["odd"]))
        .otherwise(pl.col("attributes"))
        .alias("attributes")
    )
    config = digit_job(tmp_path / "c", edited, {"a.parquet": (0, 50)})
    with pytest.raises(InputError, match=r"holds \['odd'\], which are not labels"):
        run_job(config, progress=False)
    # a table a single-label job wrote is not taken over by a multi-label job
    config = digit_job(tmp_path / "d", digits, {"a.parquet": (0, 50)})
    single = JobConfig.model_validate(
        {
            "source": {"path": config.source.path},
            "labeling_functions": {
                "sources": [str(tmp_path / "d" / "lfs.py:has_hole")],
                "classes": ["other", "closed_loop"],
            },
            "output": {"path": config.output.path},
        }
    )
    run_job(single, progress=False)
    with pytest.raises(InputError, match=r"another kind of job \(it was a multiclass job"):
        run_job(config, progress=False)


def test_a_single_label_job_does_not_take_over_a_multilabel_table(tmp_path, digits):
    config = digit_job(tmp_path, digits, {"a.parquet": (0, 50)})
    run_job(config, progress=False)
    single = JobConfig.model_validate(
        {
            "source": {"path": config.source.path},
            "labeling_functions": {
                "sources": [str(tmp_path / "lfs.py:has_hole")],
                "classes": ["other", "closed_loop"],
            },
            "output": {"path": config.output.path},
        }
    )
    with pytest.raises(InputError, match=r"holds the state of a multi-label or several-task"):
        run_job(single, progress=False)


def test_a_label_no_lf_votes_on_is_named_in_the_warnings(tmp_path, digits):
    config = digit_job(tmp_path, digits, {"a.parquet": (0, 300)})
    data = config.model_dump()
    data["labeling_functions"]["labels"] = [*LABELS, "slanted"]
    result = run_job(JobConfig.model_validate(data), progress=False)
    assert any("no LF votes on label(s) ['slanted']" in w for w in result.warnings)
    assert "p_slanted" in read_table(config.output.path).columns


EMBEDDING_LFS = """
import numpy as np
from labeling_functions import Against, prototype_lf

_vectors = np.load("prototypes.npy")
like_1 = prototype_lf("like_1", _vectors[:10], threshold=0.8, column="embedding",
                      label=(Against("even"), Against("at_least_five"), Against("closed_loop")))
like_8 = prototype_lf("like_8", _vectors[10:], threshold=0.8, column="embedding",
                      label=("even", "at_least_five", "closed_loop"))
"""


def test_multilabel_job_with_embedding_lfs_votes_only_new_assets(tmp_path, monkeypatch):
    sample = load_mnist_sample()
    pixels = sample.images.reshape(len(sample.images), -1).astype(np.float32) / 255
    vectors = pixels @ np.random.default_rng(0).normal(size=(784, 32)).astype(np.float32)
    digits = sample.labels.astype(int)
    references = np.concatenate(
        [np.flatnonzero(digits == 1)[:10], np.flatnonzero(digits == 8)[:10]]
    )
    np.save(tmp_path / "prototypes.npy", vectors[references])
    (tmp_path / "lfs.py").write_text(EMBEDDING_LFS)
    (tmp_path / "data").mkdir()
    frame = pl.DataFrame({"asset_id": np.arange(len(vectors)), "vector": vectors})
    frame.slice(0, 990).write_parquet(tmp_path / "data" / "a.parquet")
    monkeypatch.chdir(tmp_path)  # the LF file reads its prototypes from the working directory
    config = JobConfig.model_validate(
        {
            "source": {"path": "data/*.parquet", "embedding_column": "vector"},
            "embeddings": {"enabled": True, "encoder": "precomputed"},
            "labeling_functions": {"sources": ["lfs.py"], "task": "multilabel", "labels": LABELS},
            "output": {"path": "out/digits"},
        }
    ).resolved(tmp_path)
    first = run_job(config, progress=False)
    assert first.counts["n_voted"] == 990
    frame.slice(990, 10).write_parquet(tmp_path / "data" / "b.parquet")
    second = run_job(config, progress=False)
    assert (second.counts["n_new"], second.counts["n_voted"]) == (10, 10)
    out = read_table(config.output.path)
    assert out.height == 1000 and "index_id" in out.columns
    votes = np.array(out.get_column("vote_like_8").to_list())
    assert votes.shape == (1000, 3) and (votes == 1).any()


# -- the end model of a multi-label job, and of several tasks ----------------------------------
SHAPE_LFS = """
loopy = expression_lf("loopy", pl.col("holes") >= 1, label="round")
straight = expression_lf("straight", (pl.col("holes") == 0) & (pl.col("width") <= 12),
                         label="straight")
wide = expression_lf("wide", pl.col("width") >= 16, label="round")
SHAPE = [loopy, straight, wide]
ATTRIBUTES = [has_hole, no_hole, two_holes, thin, top_heavy, bottom_heavy, heavy_ink]
"""

END_MODEL = {"enabled": True, "cv": 3, "max_train_rows": 1500}


@pytest.fixture(scope="module")
def digit_vectors(digits) -> pl.DataFrame:
    """The digits with a precomputed vector each (a random projection of the pixels)."""
    pixels = load_mnist_sample().images.reshape(len(digits), -1).astype(np.float32) / 255
    vectors = pixels @ np.random.default_rng(0).normal(size=(784, 24)).astype(np.float32)
    return digits.with_columns(pl.Series("vector", vectors))


def vector_job(
    root: Path,
    frame: pl.DataFrame,
    parts: dict[str, tuple[int, int]],
    *,
    end_model: dict | None = None,
    tasks: bool = False,
    labels: list[str] = LABELS,
    tolerance: float = 0.005,
) -> JobConfig:
    """A digit job whose end model reads the precomputed vectors (the job's embeddings)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, (start, stop) in parts.items():
        frame.slice(start, stop - start).write_parquet(root / "data" / name)
    (root / "lfs.py").write_text(DIGIT_LFS + SHAPE_LFS)
    lfs: dict = {
        "sources": [f"{root / 'lfs.py'}:ATTRIBUTES"],
        "task": "multilabel",
        "labels": labels,
    }
    gold: dict = {"column": "attributes"}
    if tasks:
        gold = {}
        lfs = {
            "tasks": {
                "shape": {
                    "sources": [f"{root / 'lfs.py'}:SHAPE"],
                    "classes": ["straight", "round"],
                },
                "attrs": {
                    "sources": [f"{root / 'lfs.py'}:ATTRIBUTES"],
                    "task": "multilabel",
                    "labels": LABELS,
                    "gold_column": "attributes",
                },
            }
        }
    return JobConfig.model_validate(
        {
            "source": {"path": str(root / "data" / "*.parquet"), "embedding_column": "vector"},
            "embeddings": {"enabled": True, "encoder": "precomputed"},
            "labeling_functions": lfs,
            "gold": gold,
            "end_model": end_model or END_MODEL,
            "output": {"path": str(root / "out" / "digits"), "proba_tolerance": tolerance},
        }
    )


def _unit_vectors(table: pl.DataFrame, frame: pl.DataFrame) -> np.ndarray:
    vectors = np.asarray(
        table.select("asset_id").join(frame, on="asset_id", how="left")["vector"].to_list()
    )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_multilabel_end_model_labels_every_asset_then_a_kept_model_predicts_the_new(
    tmp_path, digit_vectors
):
    config = vector_job(tmp_path, digit_vectors, {"a.parquet": (0, 1980)})
    first = run_job(config, progress=False)
    before = read_table(config.output.path).sort("asset_id")
    assert {f"model_p_{label}" for label in LABELS} <= set(before.columns)
    assert before.schema["model_labels"] == pl.List(pl.String)
    assert before.get_column("model_p_even").null_count() == 0
    assert set(before.get_column("label_source")) <= {"gold", "lfs", "model"}
    task = first.record["tasks"]["task"]
    assert task["end_model"]["retrain"]["retrained"]
    assert [s["label"] for s in task["end_model"]["labels"]] == LABELS
    end = task["metrics"]["end_model"]
    assert end["retrained"] and [r["label"] for r in end["per_label"]] == LABELS
    assert all(r["trained"] for r in end["per_label"]) and 0 < end["gold"]["macro_f1"] <= 1
    # the predicted set is every label whose probability reaches its threshold
    cut = task["end_model"]["thresholds"]
    expected = [
        [label for label, p, c in zip(LABELS, row, cut, strict=True) if p >= c]
        for row in before.select(f"model_p_{label}" for label in LABELS).rows()
    ]
    assert before.get_column("model_labels").to_list() == expected
    page = Path(first.report_path).read_text()
    assert "End model per label" in page and "Retrained: no model stored" in page

    # about 1% more: the training sample barely moves, the stored models predict the new assets
    digit_vectors.slice(1980, 20).write_parquet(tmp_path / "data" / "b.parquet")
    second = run_job(config, progress=False)
    state = second.record["tasks"]["task"]["end_model"]
    assert not state["retrain"]["retrained"] and 0 <= state["retrain"]["drift"] <= 0.05
    assert state["runs_since_training"] == 1
    assert not second.record["tasks"]["task"]["metrics"]["end_model"]["retrained"]
    after = read_table(config.output.path).sort("asset_id")
    cols = [f"model_p_{label}" for label in LABELS]
    new = after.filter(pl.col("asset_id") >= 1980)
    expected = np.column_stack(
        [linear_proba(s, _unit_vectors(new, digit_vectors))[:, 1] for s in state["labels"]]
    )
    # (the index keeps the vectors in float32)
    assert np.abs(new.select(cols).to_numpy() - expected).max() < 1e-6
    old = ["asset_id", *cols, "model_labels", "label_source"]
    assert after.filter(pl.col("asset_id") < 1980).select(old).equals(before.select(old))
    assert "Kept the stored model" in Path(second.report_path).read_text()
    again = run_job(config, progress=False)
    assert again.counts["n_written"] == 0


def test_multilabel_end_model_retrained_incrementally_equals_a_run_from_scratch(
    tmp_path, digit_vectors
):
    always = {**END_MODEL, "retrain_after": 0.0}
    parts = {"a.parquet": (0, 1000)}
    config = vector_job(tmp_path / "nightly", digit_vectors, parts, end_model=always, tolerance=0)
    run_job(config, progress=False)
    more = {"b.parquet": (1000, 1010)}
    config = vector_job(tmp_path / "nightly", digit_vectors, more, end_model=always, tolerance=0)
    second = run_job(config, progress=False)
    retrain = second.record["tasks"]["task"]["end_model"]["retrain"]
    assert retrain["retrained"] and "> retrain_after" in retrain["reason"]
    scratch = vector_job(
        tmp_path / "scratch", digit_vectors, parts | more, end_model=always, tolerance=0
    )
    run_job(scratch, progress=False)
    a = read_table(config.output.path).sort("asset_id")
    b = read_table(scratch.output.path).sort("asset_id")
    exact = ["asset_id", "model_labels", "label_source"]
    assert a.select(exact).equals(b.select(exact))
    cols = [f"model_p_{label}" for label in LABELS]
    assert np.abs(a.select(cols).to_numpy() - b.select(cols).to_numpy()).max() < 1e-9


def test_two_tasks_each_get_their_end_model(tmp_path, digit_vectors):
    config = vector_job(tmp_path, digit_vectors, {"a.parquet": (0, 990)}, tasks=True)
    first = run_job(config, progress=False)
    out = read_table(config.output.path)
    for column in ["shape__model_label", "shape__model_proba_round", "shape__label_source"]:
        assert column in out.columns
    for column in ["attrs__model_p_even", "attrs__model_labels", "attrs__label_source"]:
        assert column in out.columns
    assert "model_label" not in out.columns and "label_source" not in out.columns
    tasks = first.record["tasks"]
    assert tasks["shape"]["end_model"]["retrain"]["retrained"]
    assert tasks["attrs"]["end_model"]["retrain"]["retrained"]
    assert tasks["shape"]["metrics"]["end_model"]["n_train"] > 0
    page = Path(first.report_path).read_text()
    assert "<h2>End model</h2>" in page and "End model per label" in page
    digit_vectors.slice(990, 10).write_parquet(tmp_path / "data" / "b.parquet")
    second = run_job(config, progress=False)
    tasks = second.record["tasks"]
    assert not tasks["shape"]["end_model"]["retrain"]["retrained"]
    assert not tasks["attrs"]["end_model"]["retrain"]["retrained"]
    after = read_table(config.output.path)
    assert after.height == 1000 and after.get_column("shape__model_label").null_count() == 0
    assert after.get_column("attrs__model_p_closed_loop").null_count() == 0


def test_a_label_without_two_values_gets_no_classifier(tmp_path, digit_vectors):
    config = vector_job(
        tmp_path, digit_vectors, {"a.parquet": (0, 300)}, labels=[*LABELS, "slanted"]
    )
    result = run_job(config, progress=False)
    assert any("label(s) ['slanted'] get no classifier" in w for w in result.warnings)
    state = result.record["tasks"]["task"]["end_model"]
    assert "constant" in state["labels"][3] and "coef" in state["labels"][0]
    out = read_table(config.output.path)
    assert out.get_column("model_p_slanted").n_unique() == 1


def test_a_multilabel_end_model_without_features_names_the_key():
    with pytest.raises(JobConfigError, match=r"end_model\.feature_columns: the end model is ena"):
        JobConfig.model_validate(
            {
                "source": {"path": "x"},
                "labeling_functions": {"sources": ["m:a"], "task": "multilabel", "labels": LABELS},
                "end_model": {"enabled": True},
                "output": {"path": "y"},
            }
        )


@pytest.mark.parametrize("n_labels", [1, 3, 8, 9, 14])
def test_packed_votes_decode_to_the_votes_packed(n_labels):
    rng = np.random.default_rng(n_labels)
    votes = rng.integers(-1, 2, size=(500, n_labels)).astype(np.int8)
    codes = encode_votes(votes)
    codes[::7] = -1  # no vote stored: decoded as abstains
    votes[::7] = 0
    assert np.array_equal(decode_votes(codes, n_labels), votes)


def test_a_refit_review_queue_spreads_each_label_over_its_vote_patterns(tmp_path, digits):
    config = digit_job(tmp_path, digits, {"a.parquet": (0, 300)})
    data = config.model_dump()
    data["review"] = {"purpose": "refit", "max_items": 30}
    result = run_job(JobConfig.model_validate(data), progress=False)
    queue = pl.read_parquet(result.review_path)
    assert queue.group_by("for_label").len().sort("for_label").rows() == [
        (label, 10) for label in sorted(LABELS)
    ]


def test_multilabel_end_model_on_numeric_feature_columns(tmp_path, digits):
    config = digit_job(tmp_path, digits, {"a.parquet": (0, 600)})
    data = config.model_dump()
    features = ["holes", "ink", "top_share", "width"]
    data["end_model"] = {"enabled": True, "feature_columns": features, "cv": 3}
    config = JobConfig.model_validate(data)
    first = run_job(config, progress=False)
    state = first.record["tasks"]["task"]["end_model"]
    assert not state["embedding"] and state["feature_columns"] == features
    digits.slice(600, 6).write_parquet(tmp_path / "data" / "b.parquet")
    second = run_job(config, progress=False)
    state = second.record["tasks"]["task"]["end_model"]
    assert not state["retrain"]["retrained"]
    out = read_table(config.output.path).sort("asset_id")
    assert set(features) <= set(out.columns)  # kept for the next runs' predictions
    new = out.filter(pl.col("asset_id") >= 600)
    raw = new.select(pl.col(c).cast(pl.Float64) for c in features).to_numpy()
    expected = np.column_stack(
        [
            linear_proba(s, (raw - np.asarray(s["feature_mean"])) / np.asarray(s["feature_scale"]))[
                :, 1
            ]
            for s in state["labels"]
        ]
    )
    got = new.select(f"model_p_{label}" for label in LABELS).to_numpy()
    assert np.abs(got - expected).max() < 1e-12


def test_multilabel_job_proposes_similar_unsure_assets_for_each_labels_gaps(tmp_path, monkeypatch):
    sample = load_mnist_sample()
    pixels = sample.images.reshape(len(sample.images), -1).astype(np.float32) / 255
    vectors = pixels @ np.random.default_rng(0).normal(size=(784, 32)).astype(np.float32)
    digits = sample.labels.astype(int)
    references = np.concatenate(
        [np.flatnonzero(digits == 1)[:10], np.flatnonzero(digits == 8)[:10]]
    )
    np.save(tmp_path / "prototypes.npy", vectors[references])
    (tmp_path / "lfs.py").write_text(EMBEDDING_LFS)
    (tmp_path / "data").mkdir()
    ids = np.arange(len(vectors)) + 1000  # asset ids that are not the rows nor the index ids
    frame = pl.DataFrame({"asset_id": ids, "vector": vectors}).slice(0, 600)
    frame.write_parquet(tmp_path / "data" / "a.parquet")
    monkeypatch.chdir(tmp_path)
    config = {
        "source": {"path": "data/*.parquet", "embedding_column": "vector"},
        "embeddings": {"enabled": True, "encoder": "precomputed"},
        "labeling_functions": {"sources": ["lfs.py"], "task": "multilabel", "labels": LABELS},
        "gaps": {"min_confident": 300, "candidates_per_gap": 4},
        "output": {"path": "out/digits"},
    }
    result = run_job(JobConfig.model_validate(config).resolved(tmp_path), progress=False)
    gaps = result.record["tasks"]["task"]["metrics"]["gaps"]
    n_gaps = len({(row["label"], row["gap"]) for row in gaps["gaps"]})
    assert n_gaps > 0 and gaps["candidates_note"] is None
    picks = gaps["candidates"]
    assert 0 < len(picks) == gaps["n_candidates"] <= 4 * n_gaps
    assert {p["label"] for p in picks} <= set(LABELS)
    out = read_table(JobConfig.model_validate(config).resolved(tmp_path).output.path)
    flagged = set(out.filter(pl.col("review")).get_column("asset_id").to_list())
    chosen = [p["asset_id"] for p in picks]
    assert len(set(chosen)) == len(chosen) and set(chosen) <= flagged
    page = Path(result.report_path).read_text()
    assert f"{len(picks)} similar unsure assets proposed for the gaps" in page
    queue = pl.read_parquet(result.review_path)
    gap_rows = queue.filter(pl.col("reasons").list.contains("gap_candidate"))
    queued = set(gap_rows.select("for_label", "asset_id").rows())
    assert queued and queued <= {(p["label"], p["asset_id"]) for p in picks}


def test_multilabel_job_without_embeddings_says_why_no_assets_are_proposed(tmp_path, digits):
    config = digit_job(tmp_path, digits, {"a.parquet": (0, 300)})
    data = config.model_dump()
    data["gaps"]["min_confident"] = 200
    result = run_job(JobConfig.model_validate(data), progress=False)
    gaps = result.record["tasks"]["task"]["metrics"]["gaps"]
    assert gaps["gaps"] and gaps["n_candidates"] is None
    assert gaps["candidates_note"] == "no embedding index to search ([embeddings] is off)"
