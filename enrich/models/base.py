"""What every label model shares: argument checks, the vote scorer, and JSON save/load.

:class:`VoteModel` is the base of :class:`~enrich.models.label_model.LabelModel`,
:class:`~enrich.models.majority_vote.MajorityVote` and
:class:`~enrich.models.snorkel.SnorkelLabelModel`: scikit-learn's estimator conventions
(:class:`~enrich._internal.estimator.Estimator`), a fitted check, and ``save``/``load`` as
versioned JSON (never pickle), each subclass saying only what its fitted state is.

>>> import numpy as np
>>> votes = np.array([[0, 1], [1, -1]])
>>> table = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])  # +1 for class 1 votes
>>> score_rows(votes, table, np.zeros(2)).tolist()
[[0.0, 1.0], [0.0, 1.0]]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from enrich._internal.estimator import Estimator
from enrich._internal.files import write_atomic
from enrich._internal.random import check_random_state
from enrich.errors import InputError, LabelModelFileError, NotFittedError

__all__ = [
    "VoteModel",
    "check_cardinality",
    "check_class_balance",
    "check_fitted",
    "check_random_state",
    "nan_to_none",
    "none_to_nan",
    "predict_from_proba",
    "read_model_file",
    "score_rows",
    "write_model_file",
]


class VoteModel(Estimator):
    """Base of the label models: fitted check and versioned JSON ``save``/``load``.

    A subclass sets ``_FORMAT`` and ``_FORMAT_VERSION`` and implements
    :meth:`_fitted_state` (the fitted attributes as JSON values) and :meth:`_restore`
    (set them back on a model built from the saved parameters).
    """

    _FORMAT: ClassVar[str]
    _FORMAT_VERSION: ClassVar[int]

    def save(self, path: str | Path) -> None:
        """Write the fitted model to ``path`` as JSON (never pickle)."""
        check_fitted(self)
        write_model_file(path, self._FORMAT, self._FORMAT_VERSION, self, self._fitted_state())

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save` (or by an earlier format version it reads).

        Everything read is checked before it is used: the parameters (known names, valid
        values), the cardinality against the saved class balance (before anything of that
        size is allocated), and every fitted array (type, shape, finite values). A file that
        fails any check raises :class:`~enrich.errors.LabelModelFileError` naming the file.
        """
        versions = (cls._FORMAT_VERSION, *cls._READS_VERSIONS)
        payload = read_model_file(path, cls._FORMAT, versions)
        try:
            params, fitted = payload.get("params"), payload.get("fitted")
            if not isinstance(params, dict) or not isinstance(fitted, dict):
                raise ValueError("'params' and 'fitted' must be JSON objects")
            unknown = sorted(set(params) - set(cls._init_parameters()))
            if unknown:
                raise ValueError(f"unknown parameters {unknown}")
            model = cls(**cls._params_from_json(params))
            _check_loaded_size(model, fitted)
            model._validate_loaded()
            model._restore(fitted)
            _check_loaded_arrays(model)
        except LabelModelFileError:
            raise
        except (InputError, TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
            raise LabelModelFileError(
                f"{str(path)!r} is not a valid saved {cls.__name__}: {exc}. Save the model "
                "again with this version of enrich"
            ) from exc
        return model

    #: Earlier format versions :meth:`load` still reads.
    _READS_VERSIONS: ClassVar[tuple[int, ...]] = ()
    #: Fitted float attributes that may hold NaN (e.g. a never-voted class's precision).
    _NAN_ALLOWED: ClassVar[tuple[str, ...]] = ()

    def _validate_loaded(self) -> None:
        """Check the loaded hyperparameters (a subclass checks more)."""
        check_cardinality(self.cardinality)
        check_class_balance(getattr(self, "class_balance", None), int(self.cardinality))

    @classmethod
    def _params_from_json(cls, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    def _fitted_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore(self, fitted: dict[str, Any]) -> None:
        raise NotImplementedError


def check_fitted(model: Any, attr: str = "class_balance_") -> None:
    """Raise :class:`~enrich.errors.NotFittedError` unless ``model`` has ``attr``."""
    if not hasattr(model, attr):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call .fit(L) before using it"
        )


def check_cardinality(cardinality: Any) -> int:
    """Return ``cardinality`` as an int >= 2, or raise a clear InputError."""
    if isinstance(cardinality, bool) or not isinstance(cardinality, int | np.integer):
        raise InputError(f"cardinality must be an int >= 2; got {cardinality!r}")
    if cardinality < 2:
        raise InputError(
            f"cardinality must be >= 2 (the number of classes); got {cardinality}. A task "
            "with one class needs no label model."
        )
    return int(cardinality)


def check_class_balance(class_balance: Any, k: int) -> np.ndarray | None:
    """Return ``class_balance`` normalised to ``(k,)`` positive shares (None stays None)."""
    if class_balance is None:
        return None
    try:
        prior = np.asarray(class_balance, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"class_balance must be {k} numbers; got {class_balance!r}") from exc
    if prior.shape != (k,):
        raise InputError(
            f"class_balance must hold one number per class ({k}); got shape {prior.shape}"
        )
    if not np.all(np.isfinite(prior)) or np.any(prior <= 0):
        raise InputError(
            f"class_balance must be positive and finite; got {prior.tolist()}. Give every class "
            "a small positive share if it is rare"
        )
    return prior / prior.sum()


def score_rows(votes: np.ndarray, table: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``base + sum over non-abstain votes of table[j * k + vote]`` per row, shape ``(n, k)``.

    Scores are computed relative to class 0 (a per-row shift a softmax ignores), block by
    block so memory stays bounded. Dense matrices: LFs are packed in groups whose joint votes
    index one precomputed table (the group code is an exact small-integer matrix product), so
    each row costs one lookup per group instead of one per LF. Sparse matrices (under 15%
    votes): ``nonzero`` + ``bincount`` over the votes only.
    """
    n, m = votes.shape
    k = table.shape[1]
    rel = (table[:, 1:] - table[:, :1]).reshape(m, k, k - 1)  # [j, v, y - 1]
    out = np.zeros((n, k))
    if n == 0 or m == 0:
        out += base
        return out
    sample = votes[:: max(1, n // 2000)]
    if float((sample >= 0).mean()) >= 0.15:
        _score_dense(votes, rel, out)
    else:
        rel_t = np.ascontiguousarray(rel.reshape(m * k, k - 1).T)
        block = max(1, (1 << 22) // m)
        for start in range(0, n, block):
            part = votes[start : start + block]
            rows, cols = np.nonzero(part >= 0)
            idx = cols * k + part[rows, cols]
            size = part.shape[0]
            for c in range(k - 1):
                out[start : start + size, c + 1] = np.bincount(
                    rows, weights=rel_t[c][idx], minlength=size
                )
    out += base
    return out


def _score_dense(votes: np.ndarray, rel: np.ndarray, out: np.ndarray) -> None:
    """Dense scoring by LF groups: ``out[:, 1:] += sum over groups of T_g[code_g(row)]``."""
    n, m = votes.shape
    k = rel.shape[1]
    base = k + 1  # outcomes per LF: abstain, 0..k-1
    size = max(1, int(np.log(4096) // np.log(base)))  # LFs per group, table <= 4096 rows
    groups = [np.arange(s, min(s + size, m)) for s in range(0, m, size)]
    # code of a row within group g: sum_i (vote_i + 1) * base**i (exact in float32)
    weights = np.zeros((m, len(groups)), dtype=np.float32)
    lut = np.zeros((m, base, k - 1))
    lut[:, 1:, :] = rel
    tables = []
    for g, members in enumerate(groups):
        powers = base ** np.arange(members.size)
        weights[members, g] = powers
        codes = np.arange(base**members.size)
        digits = (codes[:, None] // powers[None, :]) % base  # [code, i] = vote_i + 1
        table = np.zeros((codes.size, k - 1))
        for i, j in enumerate(members):
            table += lut[j, digits[:, i]]
        tables.append(table)  # [code, y - 1]
    starts = np.cumsum([0] + [t.shape[0] for t in tables[:-1]])
    flat = np.concatenate(tables)  # [offset + code, y - 1]
    shift = weights.sum(axis=0) + starts  # the +1 of every vote, and each group's offset
    block = max(1, (1 << 20) // max(m, k * len(groups)))
    from threadpoolctl import threadpool_limits

    # the product is skinny and memory-bound: BLAS threads only contend (7x slower on a
    # loaded 2-core machine, no faster on an idle one)
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n, block):
            part = votes[start : start + block].astype(np.float32)
            idx = (part @ weights + shift).astype(np.intp)  # [row, group]
            stop = start + part.shape[0]
            if k == 2:
                out[start:stop, 1] = flat[:, 0][idx].sum(axis=1)
            else:
                out[start:stop, 1:] = flat[idx].sum(axis=1)


def predict_from_proba(proba: np.ndarray) -> np.ndarray:
    """Return the most probable class per row (ties to the lowest class id)."""
    return np.argmax(proba, axis=1).astype(np.int64)


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, np.random.Generator):
            value = None  # a generator cannot be stored; fitting does not depend on it
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        out[key] = value
    return out


def nan_to_none(arr: np.ndarray) -> Any:
    """Return ``arr`` as nested lists with NaN as None (JSON has no NaN)."""
    return np.where(np.isnan(arr), None, arr).tolist()


def none_to_nan(values: Any) -> np.ndarray:
    """Return ``values`` as a float array with None as NaN."""
    arr = np.array(values, dtype=object)
    return np.where(arr == None, np.nan, arr).astype(np.float64)  # noqa: E711


def write_model_file(path: str | Path, fmt: str, version: int, model: Any, fitted: dict) -> None:
    """Write a fitted model as JSON: its format, version, parameters and fitted state."""
    payload = {
        "format": fmt,
        "format_version": version,
        "params": _json_params(model.get_params()),
        "fitted": fitted,
    }
    text = json.dumps(payload)
    write_atomic(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def _check_loaded_size(model: Any, fitted: dict[str, Any]) -> None:
    """Check a loaded model's cardinality and LF count before allocating anything that size.

    The cardinality must equal the length of the saved class balance (a list read from the
    file, so its size is bounded by the file's).
    """
    k = check_cardinality(model.cardinality)
    balance = fitted["class_balance"]
    if not isinstance(balance, list) or len(balance) != k:
        size = len(balance) if isinstance(balance, list) else type(balance).__name__
        raise ValueError(f"cardinality {k} but the saved class balance has {size} entries")
    n_lfs = fitted["n_lfs"]
    if isinstance(n_lfs, bool) or not isinstance(n_lfs, int) or n_lfs < 1:
        raise ValueError(f"n_lfs must be an int >= 1; got {n_lfs!r}")


def _check_loaded_arrays(model: Any) -> None:
    """Check that a loaded model's float arrays are finite and its balance a distribution.

    NaN is allowed only in the attributes listed in ``_NAN_ALLOWED``.
    """
    for name, value in vars(model).items():
        if not name.endswith("_") or not isinstance(value, np.ndarray):
            continue
        if value.dtype.kind != "f":
            continue
        bad = ~np.isfinite(value)
        if name in model._NAN_ALLOWED:
            bad &= ~np.isnan(value)
        if bad.any():
            raise ValueError(f"{name.rstrip('_')} holds {value[bad].flat[0]!r}")
    balance = model.class_balance_
    if balance.ndim != 1 or np.any(balance <= 0) or not np.isclose(balance.sum(), 1.0):
        raise ValueError(f"class_balance must be positive and sum to 1; got {balance.tolist()}")


def read_model_file(path: str | Path, fmt: str, version: int | tuple[int, ...]) -> dict[str, Any]:
    """Read and check a file written by :func:`write_model_file`; return its payload."""
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise LabelModelFileError(f"{str(path)!r} is not a saved model (JSON): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise LabelModelFileError(
            f"{str(path)!r} holds {found!r}, not a {fmt} file; load it with the class that saved it"
        )
    versions = (version,) if isinstance(version, int) else tuple(version)
    found_version = payload.get("format_version")
    if isinstance(found_version, bool) or found_version not in versions:
        raise LabelModelFileError(
            f"{str(path)!r} is {fmt} format version {payload.get('format_version')!r}; this "
            f"version of enrich reads version {' or '.join(map(str, versions))}. Refit and "
            "save the model again"
        )
    return payload
