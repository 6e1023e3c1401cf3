"""The batch job's configuration: one typed, validated model, loaded from TOML in one place.

A job file has the sections ``[source]``, ``[embeddings]``, ``[labeling_functions]``,
``[label_model]``, ``[gold]``, ``[gaps]``, ``[review]``, ``[end_model]``, ``[output]``,
``[engine]``, ``[retention]`` and ``[storage]``. ``[labeling_functions]`` says what is
labeled: one class per asset (``classes``, the default ``task = "multiclass"``) or any subset
of ``labels`` (``task = "multilabel"``); several named tasks over the same assets are
``[labeling_functions.tasks.<name>]`` sections, each with those keys (:class:`TaskConfig`).
Unknown keys are refused and every error names its key path (``output.path``) and what is
allowed. Relative paths in a job file are read relative to the file's folder; any path may
also be an object-store URI (``s3://``, ``gs://``, ``az://``, ``file://``) reached with the
``storage_options`` of ``[storage]`` (and of ``[source]`` / ``[output]``).
:func:`example_job_toml` is the commented example ``enrich init`` writes.

>>> config = JobConfig.model_validate({
...     "source": {"path": "comments.parquet", "text_column": "text"},
...     "labeling_functions": {"sources": ["labeling_functions.packs.youtube_spam:LFS"],
...                            "classes": ["HAM", "SPAM"]},
...     "output": {"path": "out/enriched"},
... })
>>> config.engine.kind, config.output.proba_tolerance
('local', 0.005)
>>> JobConfig.model_validate({"source": {"path": "x"}, "output": {"path": "y", "pth": 1},
...                           "labeling_functions": {"sources": ["m:a"], "classes": ["A"]}})
Traceback (most recent call last):
...
enrich.errors.JobConfigError: job config: 1 problem: output.pth: unknown key; allowed keys ...
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_serializer,
    model_validator,
)

from enrich.errors import JobConfigError
from enrich.labeling.apply import OnError
from enrich.labeling.sources import split_lf_source

__all__ = [
    "EmbeddingsConfig",
    "EndModelConfig",
    "EngineConfig",
    "GapsConfig",
    "GoldConfig",
    "JobConfig",
    "JobConfigError",
    "LabelModelConfig",
    "LabelingFunctionsConfig",
    "OutputConfig",
    "RetentionConfig",
    "ReviewConfig",
    "SourceConfig",
    "StorageConfig",
    "TaskConfig",
    "example_job_toml",
    "load_job_config",
]

logger = logging.getLogger(__name__)

SourceFormat = Literal["auto", "parquet", "csv", "delta"]
EncoderKind = Literal["text", "image", "precomputed"]
EngineKind = Literal["local", "dask"]
TaskKind = Literal["multiclass", "multilabel"]

#: The most labels one multi-label task of a job may have (the job keeps each LF's votes on
#: every label of a task as one base-3 number in an Int32 column of its state).
MAX_JOB_LABELS = 19


_SECRET_KEY = re.compile(r"secret|token|password|sas|account_key|access_key|credential|_key$")


def _option_values(value: Any) -> Any:
    """Storage option values as strings (TOML booleans and numbers are written as text)."""
    if not isinstance(value, dict):
        return value
    return {
        str(k): (str(v).lower() if isinstance(v, bool) else str(v))
        if isinstance(v, str | bool | int | float)
        else v
        for k, v in value.items()
    }


def _redact(options: dict[str, str]) -> dict[str, str]:
    """The options with literal secrets replaced by ``***`` (``${NAME}`` references stay)."""
    return {
        k: ("***" if _SECRET_KEY.search(k.lower()) and not v.startswith("${") else v)
        for k, v in options.items()
    }


StorageOptions = Annotated[
    dict[str, str],
    BeforeValidator(_option_values),
    PlainSerializer(_redact, when_used="json"),
]
"""object_store ``storage_options``: text values; literal secrets are dumped as ``***``."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SourceConfig(_Section):
    """``[source]``: where the assets are and which columns mean what."""

    path: str | list[str] = Field(
        description="A file, a folder, a glob (data/*.parquet) or a list of them; for "
        "format='delta' the table's folder."
    )
    format: SourceFormat = "auto"
    id_column: str = "asset_id"
    text_column: str | None = None
    image_column: str | None = None
    embedding_column: str | None = None
    slice_columns: list[str] = Field(default_factory=list)
    # object_store options for the source's URIs (merged over [storage] options)
    storage_options: StorageOptions | None = None

    @model_validator(mode="after")
    def _paths_not_empty(self) -> SourceConfig:
        paths = [self.path] if isinstance(self.path, str) else self.path
        if not paths or any(not p.strip() for p in paths):
            raise ValueError("path: must name at least one file, folder or glob (got an empty one)")
        return self

    @property
    def paths(self) -> list[str]:
        """``path`` as a list."""
        return [self.path] if isinstance(self.path, str) else list(self.path)


class EmbeddingsConfig(_Section):
    """``[embeddings]``: embed new or changed assets (cached by content hash and encoder)."""

    enabled: bool = False
    encoder: EncoderKind | None = None
    model: str | None = None
    column: str | None = None
    batch_size: int = Field(64, ge=1)
    cache_path: str | None = None
    output_column: str = "embedding"
    # text encoder backend: "torch" (sentence-transformers), "onnx" (ONNX Runtime, float32 by
    # default; int8 faster) or "openvino" (OpenVINO, CPU: bfloat16 where the CPU has it, 4.2x
    # torch on AMX cores, else float32); the encoder id (and cache) follows both
    backend: Literal["torch", "onnx", "openvino"] = "torch"
    precision: Literal["auto", "float32", "float16", "bfloat16", "int8"] = "auto"
    device: str | None = None  # "cpu", "cuda", "cuda:1"; None: a GPU if there is one
    workers: int | None = Field(None, ge=0)  # tokenizer processes; None: 0 on CPU, <= 4 on GPU

    @model_validator(mode="after")
    def _precision_of_backend(self) -> EmbeddingsConfig:
        allowed = {
            "torch": ("auto", "float32", "float16", "bfloat16"),
            "onnx": ("auto", "float32", "int8"),
            "openvino": ("auto", "float32", "bfloat16", "int8"),
        }
        if self.precision not in allowed[self.backend]:
            raise ValueError(
                f"embeddings.precision: {self.precision!r} is not available with backend "
                f"{self.backend!r}; choose one of {list(allowed[self.backend])}"
            )
        return self


def _check_names(section: Any, key: str = "") -> None:
    """``classes`` for a multi-class task, ``labels`` for a multi-label one: unique names."""
    name = "classes" if section.task == "multiclass" else "labels"
    other = "labels" if name == "classes" else "classes"
    names = getattr(section, name)
    if names is None:
        hint = (
            f"; {other} is for task = {_OTHER_TASK[section.task]!r}"
            if getattr(section, other) is not None
            else ""
        )
        raise ValueError(
            f"{key}{name}: required, but missing (task = {section.task!r} names its {name}{hint})"
        )
    if getattr(section, other) is not None:
        raise ValueError(
            f"{key}{other}: not used by task = {section.task!r}, which names its {name}; remove "
            f"{other}, or set task = {_OTHER_TASK[section.task]!r}"
        )
    if len(set(names)) != len(names) or not all(c for c in names):
        raise ValueError(f"{key}{name}: must be unique, non-empty names; got {names}")
    if section.task == "multilabel" and len(names) > MAX_JOB_LABELS:
        raise ValueError(
            f"{key}labels: a multi-label task of a job has at most {MAX_JOB_LABELS} labels, got "
            f"{len(names)}; split them into several tasks (labeling_functions.tasks.<name>)"
        )


def _without_defaults(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``data`` less the keys whose value is the default (so older configs dump as before)."""
    return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}


_OTHER_TASK = {"multiclass": "multilabel", "multilabel": "multiclass"}
_TASK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class TaskConfig(_Section):
    """``[labeling_functions.tasks.<name>]``: one of several named tasks over the same assets.

    The keys of a one-task ``[labeling_functions]`` (``sources``, ``task``, ``classes`` or
    ``labels``, ``on_error``) plus ``gold_column``: the source column with this task's gold
    (class names or ids for a multi-class task; a list of the labels present for a
    multi-label one; null = unknown). The task's columns in the table start with
    ``<name>__`` (``spam__label``, ``topics__p_link``); LF names must be unique across tasks.

    >>> TaskConfig(sources=["m:a"], classes=["HAM", "SPAM"], gold_column="label").names
    ['HAM', 'SPAM']
    """

    sources: list[str] = Field(min_length=1)
    task: TaskKind = "multiclass"
    classes: list[str] | None = Field(None, min_length=1)
    labels: list[str] | None = Field(None, min_length=1)
    on_error: OnError = "raise"
    gold_column: str | None = None

    @model_validator(mode="after")
    def _names(self) -> TaskConfig:
        _check_names(self)
        return self

    @property
    def names(self) -> list[str]:
        """The class names (multi-class) or label names (multi-label), in id order."""
        return list((self.classes if self.task == "multiclass" else self.labels) or [])


class LabelingFunctionsConfig(_Section):
    """``[labeling_functions]``: where the LFs live and what they vote for.

    ``task = "multiclass"`` (the default): one of ``classes`` per asset. ``task =
    "multilabel"``: any subset of ``labels`` per asset (at most :data:`MAX_JOB_LABELS`); each
    LF votes for a label, against it (``Against(label)``) or abstains, per label, and the
    table gets a probability column ``p_<label>`` per label and the predicted set
    ``labels``. Several named tasks over the same assets are ``tasks``: one
    ``[labeling_functions.tasks.<name>]`` section each (:class:`TaskConfig`), and nothing
    else in ``[labeling_functions]``.

    >>> LabelingFunctionsConfig(sources=["m:a"], task="multilabel", labels=["x", "y"]).names
    ['x', 'y']
    """

    sources: list[str] | None = Field(None, min_length=1)
    task: TaskKind = "multiclass"
    classes: list[str] | None = Field(None, min_length=1)
    labels: list[str] | None = Field(None, min_length=1)
    on_error: OnError = "raise"
    tasks: dict[str, TaskConfig] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _unique_classes(self) -> LabelingFunctionsConfig:
        if self.tasks is None:
            if self.sources is None:
                raise ValueError(
                    "sources: required, but missing (or name several tasks in "
                    "[labeling_functions.tasks.<name>] sections)"
                )
            _check_names(self)
            return self
        for key in ("sources", "task", "classes", "labels", "on_error"):
            if key in self.model_fields_set:
                raise ValueError(
                    f"{key}: with labeling_functions.tasks each task holds its own {key}; move "
                    "it into the [labeling_functions.tasks.<name>] sections"
                )
        for name in self.tasks:
            if not _TASK_NAME.match(name):
                raise ValueError(
                    f"tasks: {name!r} is not a task name; a task name starts with a letter and "
                    "holds only letters, digits and '_' (it prefixes the task's columns)"
                )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        """Leave out the keys a one-task, multi-class job does not set (it dumps as before)."""
        defaults = {"task": "multiclass", "labels": None, "classes": None, "tasks": None}
        data = _without_defaults(handler(self), defaults)
        if self.tasks is not None:
            data = {"tasks": data["tasks"]}
        return data

    @property
    def names(self) -> list[str]:
        """The class names (multi-class) or label names (multi-label), in id order."""
        return list((self.classes if self.task == "multiclass" else self.labels) or [])


class LabelModelConfig(_Section):
    """``[label_model]``: the label model's seed and keyword options."""

    random_state: int | None = 0
    params: dict[str, Any] = Field(default_factory=dict)


class GoldConfig(_Section):
    """``[gold]``: known labels, from a source column and/or a reviewed gold table."""

    column: str | None = None
    path: str | None = None
    use_in_fit: bool = False


class GapsConfig(_Section):
    """``[gaps]``: find weak classes and slices; with embeddings, similar assets to review."""

    enabled: bool = True
    confident_above: float = Field(0.8, gt=0, le=1)
    min_confident: int | None = Field(None, ge=0)  # None: find_gaps scales it to the data
    min_slice_size: int = Field(20, ge=1)
    weak_below: float = Field(0.8, gt=0, le=1)
    candidates_per_gap: int = Field(10, ge=0)


class ReviewConfig(_Section):
    """``[review]``: which assets go to the review queue."""

    enabled: bool = True
    below_confidence: float = Field(0.7, gt=0, le=1)
    max_items: int = Field(500, ge=0)
    purpose: Literal["correct", "refit"] = "correct"


class EndModelConfig(_Section):
    """``[end_model]``: a classifier trained on the label model's probabilities (off by default).

    It labels every asset, those no LF voted on included (``model_label``, ``model_proba_*``,
    ``model_confidence``, ``label_source``), and its out-of-fold probabilities flag likely
    wrong gold (``gold_suspect`` in the review queue). Features: the job's embeddings (from
    its vector index, ``[embeddings]`` enabled) and/or numeric ``feature_columns`` of the
    source.

    It trains on at most ``max_train_rows`` labelled assets (gold first, the rest chosen by a
    hash of the asset id, so the sample stays nearly the same from night to night) and
    predicts every asset. A later run retrains it only when its training sample moved by more
    than ``retrain_after`` since the last training (the share of the sample's label mass that
    is new, gone, relabelled or re-embedded, summed over the runs since), every
    ``retrain_every``-th run when set, or when an LF, the classes or this section change.
    Otherwise it predicts only the new and changed assets with the model the last training
    stored in its run record, which costs next to nothing. The run record says whether a run
    retrained and why (``end_model.retrain``). After a retraining, rows whose model label
    flips or whose model probabilities move past ``output.proba_tolerance`` are rewritten.
    """

    enabled: bool = False
    embeddings: bool = True
    feature_columns: list[str] = Field(default_factory=list)
    max_train_rows: int = Field(20000, ge=10)
    min_confidence: float | None = Field(None, ge=0, lt=1)
    cv: int = Field(5, ge=2)
    random_state: int | None = 0
    retrain_after: float = Field(0.05, ge=0, le=1)
    retrain_every: int | None = Field(None, ge=1)


class OutputConfig(_Section):
    """``[output]``: the Delta table, the runs table, the reports and the run lock."""

    path: str
    runs_path: str | None = None
    reports_dir: str | None = None
    proba_tolerance: float = Field(0.005, ge=0, lt=1)
    lock_timeout: float = Field(60.0, ge=0)
    # object_store options for the output's URIs: table, runs, reports, cache and index
    # (merged over [storage] options)
    storage_options: StorageOptions | None = None

    @model_validator(mode="after")
    def _paths_named(self) -> OutputConfig:
        for key in ("path", "runs_path", "reports_dir"):
            value = getattr(self, key)
            if value is not None and (not value.strip() or os.path.normpath(value) == "."):
                raise ValueError(
                    f"{key}: must name a folder such as 'out/enriched' (got {value!r}, which "
                    "would make the job file's own folder the output)"
                )
        return self

    def locations(self) -> dict[str, str]:
        """Where the job writes: key path -> folder (defaults beside the table filled in).

        >>> OutputConfig(path="out/t").locations()["output.runs_path"]
        'out/t_runs'
        """
        table = os.path.normpath(self.path)
        return {
            "output.path": self.path,
            "output.runs_path": self.runs_path or f"{table}_runs",
            "output.reports_dir": self.reports_dir or f"{table}_reports",
        }


class StorageConfig(_Section):
    """``[storage]``: how to reach object-store URIs (``s3://``, ``gs://``, ``az://``).

    ``options`` are the ``storage_options`` that delta-rs and polars take (object_store
    keys: ``aws_endpoint_url``, ``aws_access_key_id``, ``aws_secret_access_key``,
    ``aws_region``, ``aws_allow_http``, ``google_service_account``,
    ``azure_storage_account_name``, ...); the job translates them for fsspec where it writes
    plain files. They reach every URI of the job; ``source.storage_options`` and
    ``output.storage_options`` add to them (and win) for their own paths. Leave credentials
    out to take them from the environment (``AWS_ACCESS_KEY_ID``, ...), as each library
    does, or write ``"${NAME}"`` to read the environment variable ``NAME`` at run time:
    run records and the config hash never hold a literal secret (it is written ``"***"``).

    >>> StorageConfig(options={"aws_region": "eu-west-1", "aws_allow_http": True}).options
    {'aws_region': 'eu-west-1', 'aws_allow_http': 'true'}
    """

    options: StorageOptions = Field(default_factory=dict)


class RetentionConfig(_Section):
    """``[retention]``: keep the output from growing without bound over many nightly runs.

    After each run the job compacts small files of the table and the runs table, removes
    files of table versions older than ``vacuum_after_days`` (time travel before that is
    lost), and keeps the reports of the last ``keep_reports`` runs.
    """

    enabled: bool = True
    compact_every: int = Field(10, ge=1)
    vacuum_after_days: float = Field(7.0, ge=0)
    keep_reports: int = Field(30, ge=1)


class EngineConfig(_Section):
    """``[engine]``: where the work runs: this machine's processes, or a Dask cluster."""

    kind: EngineKind = "local"
    n_jobs: int = Field(1, ge=-1)
    address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    partition_size: int = Field(50_000, ge=1)

    @model_validator(mode="after")
    def _n_jobs_not_zero(self) -> EngineConfig:
        if self.n_jobs == 0:
            raise ValueError("n_jobs: must be a positive number of processes or -1 (all cores)")
        return self

    @field_validator("n_jobs", "n_workers")
    @classmethod
    def _at_most_the_cores(cls, value: int, info: pydantic.ValidationInfo) -> int:
        cores = available_cores()
        if value > cores:
            logger.warning(
                "engine.%s = %s is more than the %d cores available; using %d",
                info.field_name,
                value,
                cores,
                cores,
            )
            return cores
        return value


def available_cores() -> int:
    """The CPU cores this process may use (its affinity mask where the OS has one).

    >>> available_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class JobConfig(_Section):
    """A whole job: every section of the job file, validated.

    Relative paths are resolved by :func:`load_job_config` against the job file's folder;
    :meth:`resolved` does it for a config built in Python.
    """

    source: SourceConfig
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig)
    labeling_functions: LabelingFunctionsConfig
    label_model: LabelModelConfig = Field(default_factory=LabelModelConfig)
    gold: GoldConfig = Field(default_factory=GoldConfig)
    gaps: GapsConfig = Field(default_factory=GapsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    end_model: EndModelConfig = Field(default_factory=EndModelConfig)
    output: OutputConfig
    engine: EngineConfig = Field(default_factory=EngineConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @model_validator(mode="after")
    def _what_tasks_support(self) -> JobConfig:
        tasks = self.labeling_functions.tasks
        if tasks is not None and self.gold.column is not None:
            raise ValueError(
                "gold.column: with labeling_functions.tasks each task names its own gold "
                "column (labeling_functions.tasks.<name>.gold_column); remove gold.column"
            )
        if self.task_kind == "multiclass":
            return self
        what = "multi-label tasks" if tasks is None else "jobs of several tasks"
        if self.gold.path is not None:
            raise ValueError(
                f"gold.path: a reviewed gold table is not read by {what} yet; give gold in a "
                "source column (gold.column, or labeling_functions.tasks.<name>.gold_column)"
            )
        return self

    @model_validator(mode="after")
    def _embedding_input(self) -> JobConfig:
        emb = self.embeddings
        if not emb.enabled:
            return self
        kind = emb.encoder or _default_encoder(self.source)
        if kind is None:
            raise ValueError(
                "embeddings.encoder: embeddings are enabled but the source declares no "
                "text_column, image_column or embedding_column; set one, or set "
                "embeddings.enabled = false"
            )
        if emb.column is None and _input_column(self.source, kind) is None:
            wanted = {"text": "text_column", "image": "image_column"}.get(kind, "embedding_column")
            raise ValueError(
                f"embeddings.encoder: encoder {kind!r} needs source.{wanted} (or "
                "embeddings.column) to say which column to read"
            )
        return self

    @model_validator(mode="after")
    def _end_model_features(self) -> JobConfig:
        end = self.end_model
        if end.enabled and not end.feature_columns and not self.end_model_uses_embeddings:
            raise ValueError(
                "end_model.feature_columns: the end model is enabled but has no features: "
                f"end_model.embeddings = {end.embeddings} and embeddings.enabled = "
                f"{self.embeddings.enabled}; enable [embeddings] (with end_model.embeddings = "
                "true), or name numeric source columns in end_model.feature_columns"
            )
        return self

    @model_validator(mode="after")
    def _outputs_apart(self) -> JobConfig:
        problem = _output_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> JobConfig:  # type: ignore[override]
        """Validate a mapping; errors become one :class:`JobConfigError` naming key paths."""
        try:
            return super().model_validate(obj, **kwargs)
        except pydantic.ValidationError as exc:
            raise JobConfigError(_describe(exc, cls, origin="job config")) from None

    # -- derived values --------------------------------------------------------------
    @property
    def task_kind(self) -> Literal["multiclass", "multilabel", "tasks"]:
        """``"multiclass"`` (one class per asset), ``"multilabel"`` or ``"tasks"`` (several).

        >>> JobConfig.model_validate({"source": {"path": "x"}, "output": {"path": "y"},
        ...     "labeling_functions": {"tasks": {"spam": {"sources": ["m:a"],
        ...                                               "classes": ["HAM", "SPAM"]}}}}).task_kind
        'tasks'
        """
        if self.labeling_functions.tasks is not None:
            return "tasks"
        return self.labeling_functions.task

    @property
    def encoder_kind(self) -> EncoderKind | None:
        """The encoder the job uses (None when embeddings are off)."""
        if not self.embeddings.enabled:
            return None
        return self.embeddings.encoder or _default_encoder(self.source)

    @property
    def end_model_uses_embeddings(self) -> bool:
        """Whether the end model (when enabled) takes the job's embeddings as features."""
        return self.end_model.embeddings and self.embeddings.enabled

    @property
    def embedding_input_column(self) -> str | None:
        """The source column the encoder reads (None when embeddings are off)."""
        kind = self.encoder_kind
        if kind is None:
            return None
        return self.embeddings.column or _input_column(self.source, kind)

    def resolved(self, base_dir: str | Path) -> JobConfig:
        """Return a copy whose relative paths are made absolute against ``base_dir``."""
        base = Path(base_dir)

        def fix(value: str | None) -> str | None:
            if value is None or "://" in value:
                return value
            path = Path(value).expanduser()
            return str(path if path.is_absolute() else (base / path))

        source_paths = [fix(p) for p in self.source.paths]
        data = self.model_dump()
        data["source"]["path"] = (
            source_paths[0] if isinstance(self.source.path, str) else source_paths
        )
        data["output"]["path"] = fix(self.output.path)
        data["output"]["runs_path"] = fix(self.output.runs_path)
        data["output"]["reports_dir"] = fix(self.output.reports_dir)
        data["embeddings"]["cache_path"] = fix(self.embeddings.cache_path)
        data["gold"]["path"] = fix(self.gold.path)
        lfs = self.labeling_functions
        if lfs.sources is not None:
            data["labeling_functions"]["sources"] = [_fix_lf_source(s, base) for s in lfs.sources]
        for name, task in (lfs.tasks or {}).items():
            data["labeling_functions"]["tasks"][name]["sources"] = [
                _fix_lf_source(s, base) for s in task.sources
            ]
        return type(self).model_validate(data)

    def storage_options_for(self, side: Literal["source", "output"]) -> dict[str, str]:
        """The storage options of the source's or the output's URIs: ``[storage]`` + own.

        ``${NAME}`` values are left as they are (read from the environment when used).

        >>> config = JobConfig.model_validate({
        ...     "source": {"path": "s3://in/a.parquet"},
        ...     "labeling_functions": {"sources": ["m:a"], "classes": ["A"]},
        ...     "output": {"path": "s3://out/t", "storage_options": {"aws_region": "b"}},
        ...     "storage": {"options": {"aws_region": "a", "aws_allow_http": "true"}}})
        >>> config.storage_options_for("output")
        {'aws_region': 'b', 'aws_allow_http': 'true'}
        >>> config.storage_options_for("source")
        {'aws_region': 'a', 'aws_allow_http': 'true'}
        """
        own = (self.source if side == "source" else self.output).storage_options or {}
        return {**self.storage.options, **own}

    def config_hash(self) -> str:
        """A short hash of the whole resolved configuration (stored with every run)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _output_problem(config: JobConfig) -> str | None:
    """What is wrong with where the job writes, or None.

    Paths are compared as given (both relative to the same folder, or absolute); whether a
    path is a file is checked only for absolute paths, i.e. once :meth:`JobConfig.resolved`.
    """
    locations = config.output.locations()
    if config.embeddings.cache_path:
        locations["embeddings.cache_path"] = config.embeddings.cache_path
    normal = {key: Path(os.path.normpath(value)) for key, value in locations.items()}
    seen: dict[Path, str] = {}
    for key, path in normal.items():
        if path in seen:
            return (
                f"{key}: {locations[key]!r} is also {seen[path]}; each needs its own folder "
                f"(leave {key} unset for the default beside output.path)"
            )
        seen[path] = key
    for key, path in normal.items():
        if path.is_absolute() and path == Path(path.anchor):
            return (
                f"{key}: {locations[key]!r} is the filesystem root; name a folder for it, "
                "e.g. 'out/enriched'"
            )
        if path.is_absolute():
            found = _file_in_the_way(path)
            if found == path:
                return (
                    f"{key}: {locations[key]!r} is a file, not a folder; choose another path "
                    "or move the file away"
                )
            if found is not None:
                return (
                    f"{key}: the parent {str(found)!r} of {locations[key]!r} is a file, not a "
                    "folder; choose another path"
                )
    for source in config.source.paths:  # URIs too: s3://a/b compares as the folder s3:/a/b
        root, recursive = _source_root(source)
        for key, path in normal.items():
            if path.is_absolute() != root.is_absolute():
                continue
            inside = path == root or root in path.parents
            if inside and (recursive or path == root):
                return (
                    f"{key}: {locations[key]!r} is inside the source {source!r}, so a later run "
                    "would read the job's own output as input; put the output outside the "
                    "source folder"
                )
    return None


def _file_in_the_way(path: Path) -> Path | None:
    """``path`` or its nearest existing ancestor when that is not a folder, else None."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _source_root(source: str) -> tuple[Path, bool]:
    """The folder a source entry reads below, and whether it reads every file under it."""
    parts = Path(source).parts
    magic = [i for i, part in enumerate(parts) if any(c in part for c in "*?[")]
    if not magic:
        path = Path(os.path.normpath(source))
        # a folder source reads every file below it; a file reads only itself
        return path, not path.suffix or path.is_dir()
    base = Path(*parts[: magic[0]]) if magic[0] else Path(".")
    return Path(os.path.normpath(base)), "**" in parts[magic[0] :] or len(parts) - magic[0] > 1


def _default_encoder(source: SourceConfig) -> EncoderKind | None:
    if source.embedding_column:
        return "precomputed"
    if source.text_column:
        return "text"
    if source.image_column:
        return "image"
    return None


def _input_column(source: SourceConfig, kind: EncoderKind) -> str | None:
    return {
        "text": source.text_column,
        "image": source.image_column,
        "precomputed": source.embedding_column,
    }[kind]


def _fix_lf_source(spec: str, base: Path) -> str:
    """Make the file part of an LF source absolute; ``module:attribute`` stays as is."""
    target, attribute, is_file = split_lf_source(spec)
    if not is_file:
        return spec
    path = Path(target).expanduser()
    path = path if path.is_absolute() else base / path
    return f"{path}:{attribute}" if attribute else str(path)


def load_job_config(path: str | Path) -> JobConfig:
    """Read and validate a TOML job file; relative paths are taken from the file's folder.

    Raises
    ------
    JobConfigError
        The file is missing or not valid TOML (with line and column), or a value is invalid
        (each problem names its key path, e.g. ``engine.kind``, and what is allowed).

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     job = pathlib.Path(d) / "job.toml"
    ...     _ = job.write_text(example_job_toml())
    ...     load_job_config(job).labeling_functions.classes
    ['HAM', 'SPAM']
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobConfigError(
            f"job file {str(path)!r} does not exist; write one with `enrich init {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobConfigError(f"cannot read job file {str(path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobConfigError(f"job file {str(path)!r} is not valid TOML: {exc}") from None
    try:
        config = JobConfig.model_validate(data)
    except JobConfigError as exc:
        raise JobConfigError(str(exc).replace("job config:", f"{path}:", 1)) from None
    return config.resolved(path.resolve().parent)


# -- error messages ----------------------------------------------------------------------
def _describe(exc: pydantic.ValidationError, model: type[BaseModel], *, origin: str) -> str:
    problems = [_problem(error, model) for error in exc.errors()]
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    return f"{origin}: {count}: " + "; ".join(problems)


def _problem(error: Any, model: type[BaseModel]) -> str:
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    key = ".".join(str(part) for part in loc) or "(top level)"
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required, but missing"
    if kind == "literal_error":
        return f"{key}: {value!r} is not allowed; allowed: {error['ctx']['expected']}"
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        if re.match(r"^[a-z_][a-z_.]*: ", message):  # the message names its key
            return message if not loc else f"{key}.{message}"
        return f"{key}: {message}"
    return f"{key}: {error['msg'].lower()} (got {value!r})"


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in {"str", "int", "float", "bool"} or "[" in part)


def _allowed_keys(model: type[BaseModel], loc: list[Any]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            if isinstance(part, str) and current is not None:
                continue  # a key of a mapping of sections ([tasks.<name>])
            return []
        current = _model_of(field.annotation)
    return list(getattr(current, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


# -- the example job -----------------------------------------------------------------------
_EXAMPLE = """\
# An enrich job: `enrich run {name}` labels the assets of [source] with the LFs of
# [labeling_functions], fits a label model, and merges the result into the Delta table of
# [output]. Relative paths are read from this file's folder. Runs are incremental: only new
# or changed assets are embedded and voted on; a changed LF is re-run for its column only.

[source]
# A file, a folder, a glob ("data/*.parquet") or a list of them. Parquet, CSV or a Delta
# table (format = "delta"); "auto" picks by file extension.
path = "{data_path}"
format = "auto"
id_column = "asset_id"           # unique id of each asset (merge key of the output)
text_column = "text"              # text the text encoder embeds
# image_column = "image_path"     # image files or bytes, for the image encoder
# embedding_column = "vector"     # precomputed embeddings (list of floats per asset)
slice_columns = ["video"]         # report quality per value of these columns

[embeddings]
enabled = false                   # true: embed new/changed assets (cached by content hash)
# encoder = "text"                # "text" (bundled MiniLM), "image", "precomputed"
# model = "path/or/name"          # text: sentence-transformers model (default: bundled MiniLM);
#                                 # image: CLIP name/folder, or a HogPcaImageEncoder .npz file
#                                 # (default: one fitted on the first run, kept beside the table)
# column = "text"                 # default: the source column of that encoder
batch_size = 64
# backend = "openvino"            # text encoder: "torch" (default), "onnx" or "openvino" (CPU)
# precision = "auto"              # torch: float32/float16/bfloat16; onnx: float32/int8;
#                                 # openvino: float32/bfloat16/int8 (auto: bfloat16 on AMX
#                                 # CPUs, else float32; int8 opt-in, moves 1-4% of kNN votes)
# device = "cuda"                 # default: a GPU if there is one, else the CPU
# cache_path = "out/youtube/enriched_embeddings"   # default: beside the output table
output_column = "embedding"       # LFs that read this column get the asset's vector

[labeling_functions]
# "module:attribute" (an LF or a list of LFs) or a Python file ("my_lfs.py" uses its
# LFS list, or every LF it defines; "my_lfs.py:SPAM_LFS" names one attribute).
sources = ["labeling_functions.packs.youtube_spam:LFS"]
classes = ["HAM", "SPAM"]         # class names, in class-id order
on_error = "raise"                # "raise": stop at an LF error; "abstain": count it
# task = "multilabel"             # any subset of labels per asset instead of one class; then
# labels = ["promotion", "link"]  # instead of classes: a p_<label> column each + the set
# Several tasks over the same assets: a [labeling_functions.tasks.<name>] section per task
# (sources, task, classes or labels, on_error, gold_column) and nothing else here; the
# columns of each task start with <name>__ (see the README's multi-label paragraph).

[label_model]
random_state = 0
# params = {{ }}                  # keyword options of enrich.models.label_model.LabelModel

[gold]
column = "label"                  # gold labels in the source (class ids or names; -1/null unknown)
# path = "reviewed.parquet"       # a reviewed gold table: asset_id + label_name (or label)
use_in_fit = false                # false: gold only scores labels; true: the model learns it

[gaps]
enabled = true
confident_above = 0.8             # a label this sure counts as confident
# min_confident = 20              # confident labels every class and slice should hold;
                                  # unset: half the median count of the peer groups
min_slice_size = 20               # groups with fewer gold assets are not judged on quality
weak_below = 0.8                  # F1 (classes) / accuracy (slices) vs gold below this: a gap
candidates_per_gap = 10           # similar unsure assets queued per gap (needs embeddings)

[review]
enabled = true
below_confidence = 0.7            # labels less sure than this are queued for review
max_items = 500
purpose = "correct"               # "refit": gold for the label model (LF conflicts and
                                  # unvoted assets, spread over vote patterns);
                                  # see help(enrich.review_queue)

[end_model]
enabled = false                   # true: train a classifier on the labels, predict every asset
embeddings = true                 # features: the job's embeddings (needs [embeddings] enabled)
feature_columns = []              # and/or numeric source columns, e.g. ["n_links"]
max_train_rows = 20000            # bound on the training sample (gold first)
# min_confidence = 0.6            # leave out training rows the label model is less sure of
cv = 5                            # folds: out-of-fold probabilities find likely wrong gold
random_state = 0
retrain_after = 0.05              # retrain once this share of the training sample changed
                                  # (also when LFs change); until then predict only new and
                                  # changed assets with the stored model (cheap)
# retrain_every = 7               # and at least every N-th run (1: every run)

[output]
path = "out/youtube/enriched"     # the Delta table (upsert by asset id, one commit per run)
# runs_path = "out/youtube/enriched_runs"      # one row per run; default: <path>_runs
# reports_dir = "out/youtube/enriched_reports" # <run_id>.json and .html, latest.json and
#                                              # latest.html; default: <path>_reports
proba_tolerance = 0.005           # unchanged assets are rewritten only when their label flips
                                  # or a probability moves by more than this (0 = always)
lock_timeout = 60                 # seconds a second run waits for the first, then refuses

[engine]
kind = "local"                    # "local" (this machine) or "dask"
n_jobs = 1                        # local: worker processes for row-wise LFs (-1 = all cores)
# address = "tcp://scheduler:8786"  # dask: the scheduler; unset = a LocalCluster here
n_workers = 2                     # dask LocalCluster workers
threads_per_worker = 1            # dask LocalCluster threads (also torch/FAISS threads)
partition_size = 50000            # assets per task

[retention]
enabled = true                    # keep the output from growing without bound
compact_every = 10                # every N runs: merge small files of the table and runs table
vacuum_after_days = 7             # then delete files of versions older than this (time travel
                                  # to a version older than this is no longer possible)
keep_reports = 30                 # reports of the last N runs are kept (latest.* always)

[storage]                         # for paths that are URIs: s3://, gs://, az://, file://
options = {{ }}                     # delta-rs/polars storage_options (object_store keys), e.g.
                                  # {{ aws_region = "eu-west-1", aws_endpoint_url = "..." }};
                                  # credentials from the environment, or "${{NAME}}" reads the
                                  # variable NAME; per side: source.storage_options and
                                  # output.storage_options (added to these, and win)
"""


def example_job_toml(*, name: str = "job.toml", data_path: str | Path | None = None) -> str:
    """Return the commented example job for the bundled YouTube spam data (``enrich init``).

    >>> "[labeling_functions]" in example_job_toml()
    True
    """
    if data_path is None:
        from importlib import resources

        data_path = str(resources.files("enrich").joinpath("data", "youtube_spam.parquet"))
    return _EXAMPLE.format(name=name, data_path=str(data_path).replace("\\", "/"))
