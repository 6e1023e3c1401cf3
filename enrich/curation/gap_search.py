"""The search behind :func:`~enrich.curation.gap_filling.fill_gaps`: examples, pool, neighbours.

Both strategies share it: each gap's labeled examples and their index ids, the unlabeled pool
as index ids, and the nearest-neighbour search that yields a gap's candidates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from enrich._internal.frames import as_polars, require_columns
from enrich.curation.gaps import Gaps
from enrich.errors import InputError, MissingColumnError

if TYPE_CHECKING:
    from embeddings.index import VectorIndex

__all__ = [
    "TIE",
    "GapSearch",
    "GapSpec",
    "Pool",
    "example_index_ids",
    "gap_specs_of",
    "id_map_frame",
    "pick_candidates",
    "pool_assets",
    "split_budget",
    "unit_rows",
]

logger = logging.getLogger(__name__)

_CENTROID_SAMPLE = 10_000  # pool vectors averaged for a slice gap without labeled examples


_EXPAND_FACTOR = 4


_MIN_PER_QUERY = 10  # nearest pool assets fetched per example query at least


_CANDIDATES_PER_PICK = 10  # a gap first fetches this many candidates per asset of its quota


TIE = 1e-6  # cosine tolerance of the near-duplicate test (float32 rounding)


@dataclass(frozen=True)
class GapSpec:
    """One gap as the search sees it: its kind, class or slice, and quota."""

    gap: str
    kind: str
    column: str
    value: str | None
    deficit: int
    summary: str


def gap_specs_of(gaps: Gaps) -> list[GapSpec]:
    """Return the search spec of every gap of ``gaps`` that has a deficit."""
    table = gaps.table
    if not table.height:
        return []
    merged = table.group_by("gap", maintain_order=True).agg(
        pl.col("kind").first(),
        pl.col("column").first(),
        pl.col("value").first(),
        pl.col("deficit").max(),
        pl.col("metric"),
        pl.col("value_measured"),
        pl.col("target"),
    )
    specs = []
    for row in merged.iter_rows(named=True):
        parts = [
            f"{metric} {_short(measured)} < {_short(target)}"
            for metric, measured, target in zip(
                row["metric"], row["value_measured"], row["target"], strict=True
            )
        ]
        specs.append(
            GapSpec(
                gap=row["gap"],
                kind=row["kind"],
                column=row["column"],
                value=row["value"],
                deficit=max(int(row["deficit"]), 1),
                summary=", ".join(parts),
            )
        )
    specs.sort(key=lambda s: -s.deficit)  # stable: ties keep the table's order
    return specs


def _short(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


def example_index_ids(
    gaps: Gaps, examples: Any, id_lookup: pl.DataFrame | None, gap_ids: Sequence[str]
) -> dict[str, np.ndarray]:
    """Index ids of each gap's examples."""
    if examples is None:
        frame = gaps.examples
    elif isinstance(examples, Mapping):
        rows = [(str(g), a) for g, ids in examples.items() for a in _as_list(ids, g)]
        if rows:
            frame = pl.DataFrame(
                {"gap": [g for g, _ in rows], "asset_id": [a for _, a in rows]}, strict=False
            )
        else:
            frame = pl.DataFrame({"gap": [], "asset_id": []}, schema={"gap": pl.String})
    else:
        frame = as_polars(examples)
        require_columns(
            frame,
            [("gap", "fill_gaps examples"), ("asset_id", "fill_gaps examples")],
            what="argument",
        )
    unknown = sorted(set(frame["gap"].cast(pl.String).unique().to_list()) - set(gap_ids))
    if unknown and examples is not None:
        raise InputError(
            f"examples name gap(s) {unknown[:5]} that are not in gaps.table; the gaps are "
            f"{list(gap_ids)[:10]}"
        )
    if not frame.height:
        return {}
    ids = _index_ids(frame, id_lookup, "the examples")
    out: dict[str, list[int]] = {}
    for gap, i in zip(frame["gap"].cast(pl.String).to_list(), ids.tolist(), strict=True):
        out.setdefault(gap, []).append(i)
    return {gap: np.unique(np.array(v, dtype=np.int64)) for gap, v in out.items()}


def _as_list(ids: Any, gap: Any) -> list[Any]:
    if isinstance(ids, str | bytes) or not hasattr(ids, "__iter__"):
        raise InputError(f"examples[{gap!r}] must be a sequence of asset ids, got {ids!r}")
    return list(ids)


def id_map_frame(id_map: Any) -> pl.DataFrame:
    """Return ``id_map`` checked: unique ``asset_id`` to non-negative int ``index_id``."""
    frame = as_polars(id_map)
    require_columns(frame, [("asset_id", "id_map"), ("index_id", "id_map")], what="argument")
    frame = frame.select("asset_id", "index_id")
    _check_index_column(frame["index_id"], "id_map")
    if frame["asset_id"].is_duplicated().any():
        dup = frame["asset_id"].filter(frame["asset_id"].is_duplicated()).head(3).to_list()
        raise InputError(f"id_map lists asset(s) {dup} more than once; one index id per asset")
    return frame.with_columns(pl.col("index_id").cast(pl.Int64))


def _check_index_column(column: pl.Series, what: str) -> None:
    if not column.dtype.is_integer():
        raise InputError(
            f"{what}: 'index_id' must hold non-negative integers; got dtype {column.dtype}"
        )
    if column.null_count() or (column.len() and column.min() < 0):
        raise InputError(
            f"{what}: 'index_id' must hold non-negative integers without nulls; got "
            f"{column.null_count()} null(s), min {column.min()!r}"
        )


def _index_ids(frame: pl.DataFrame, id_lookup: pl.DataFrame | None, what: str) -> np.ndarray:
    """The index id of each row of ``frame`` (id_map, else ``index_id``, else int asset id)."""
    if id_lookup is not None:
        ids, own = frame["asset_id"], id_lookup["asset_id"]
        if ids.dtype != own.dtype:
            ids, own = ids.cast(pl.String), own.cast(pl.String)
        joined = pl.DataFrame({"asset_id": ids}).join(
            pl.DataFrame({"asset_id": own, "index_id": id_lookup["index_id"]}),
            on="asset_id",
            how="left",
            maintain_order="left",
        )
        missing = joined.filter(pl.col("index_id").is_null())["asset_id"]
        if missing.len():
            raise InputError(
                f"{what}: asset(s) {missing.head(5).to_list()} are not in id_map "
                f"({missing.len()} in all); id_map must cover every asset"
            )
        return joined["index_id"].to_numpy().astype(np.int64)
    if "index_id" in frame.columns:
        _check_index_column(frame["index_id"], what)
        return frame["index_id"].to_numpy().astype(np.int64)
    asset = frame["asset_id"]
    if (
        asset.dtype.is_integer()
        and not asset.null_count()
        and (not asset.len() or asset.min() >= 0)
    ):
        return asset.to_numpy().astype(np.int64)
    raise MissingColumnError(
        f"{what} have no 'index_id' column and their asset ids ({asset.dtype}) are not "
        "non-negative integers, so their vectors cannot be found in the index; add the column "
        "(enrich.curation.gap_filling.with_index_ids numbers the rows) or pass id_map="
    )


@dataclass(frozen=True)
class Pool:
    """The unlabeled assets a gap may pick from, as index ids with their uncertainty."""

    frame: pl.DataFrame  # the usable pool rows, with _index_id and _uncertainty
    has_confidence: bool
    class_scores: np.ndarray | None = field(default=None, compare=False)  # (n, k) or None
    _as_text: dict[str, pl.Series] = field(default_factory=dict, compare=False)

    def as_text(self, column: str) -> pl.Series:
        """A slice column as text, as gap values are written (cast once per column)."""
        if column not in self._as_text:
            values = self.frame[column]
            self._as_text[column] = values if values.dtype == pl.String else values.cast(pl.String)
        return self._as_text[column]


def pool_assets(
    pool: Any,
    gaps: Gaps,
    example_ids: Mapping[str, np.ndarray],
    index: VectorIndex,
    id_lookup: pl.DataFrame | None,
    class_scores: np.ndarray | None = None,
) -> Pool:
    """Return the usable pool: in the index, not labeled, not an example of a gap."""
    frame = as_polars(pool)
    require_columns(frame, [("asset_id", "fill_gaps pool")], what="argument")
    if frame["asset_id"].null_count():
        raise InputError("the pool has null asset_id(s); every asset needs an id")
    if frame["asset_id"].is_duplicated().any():
        dup = frame["asset_id"].filter(frame["asset_id"].is_duplicated()).unique().head(5)
        raise InputError(
            f"the pool lists asset(s) {dup.to_list()} more than once; keep one row per asset"
        )
    ids = _index_ids(frame, id_lookup, "the pool")
    if len(np.unique(ids)) != len(ids):
        raise InputError("the pool maps two assets to one index id; index ids must be unique")
    has_confidence = "confidence" in frame.columns
    if has_confidence:
        conf = frame["confidence"]
        if not conf.dtype.is_numeric():
            raise InputError(f"pool column 'confidence' must be numeric; got {conf.dtype}")
        values = conf.cast(pl.Float64).fill_nan(None)
        if values.drop_nulls().len() and (values.min() < 0 or values.max() > 1):
            raise InputError(
                f"pool column 'confidence' must lie in [0, 1]; got {values.min()!r} to "
                f"{values.max()!r}"
            )
        uncertainty = (1.0 - values).fill_null(1.0).to_numpy()
    else:
        uncertainty = np.zeros(frame.height)
    frame = frame.with_columns(
        pl.Series("_index_id", ids, dtype=pl.Int64),
        pl.Series("_uncertainty", uncertainty, dtype=pl.Float64),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_pool_row"),
    )
    labeled = gaps.labeled_ids
    asset = frame["asset_id"]
    if labeled.dtype != asset.dtype:
        labeled, asset = labeled.cast(pl.String), asset.cast(pl.String)
    keep = ~asset.is_in(labeled.implode()).to_numpy()
    example_all = (
        np.concatenate(list(example_ids.values())) if example_ids else np.empty(0, np.int64)
    )
    keep &= ~np.isin(ids, example_all)
    in_index = np.isin(ids, index.ids)
    if (~in_index & keep).any():
        logger.warning(
            "fill_gaps: %d pool asset(s) are not in the index and were left out (e.g. %s)",
            int((~in_index & keep).sum()),
            frame["asset_id"].filter(pl.Series(~in_index & keep)).head(3).to_list(),
        )
    if (~keep).any():
        logger.info(
            "fill_gaps: dropped %d labeled or example asset(s) from the pool", (~keep).sum()
        )
    usable = frame.filter(pl.Series(keep & in_index))
    return Pool(
        usable.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_row")),
        has_confidence,
        class_scores=None if class_scores is None else class_scores[usable["_pool_row"].to_numpy()],
    )


@dataclass(eq=False)  # compared by identity
class GapSearch:
    """Nearest-neighbour candidates of one gap, fetched lazily from the index."""

    spec: GapSpec
    index: Any
    queries: np.ndarray  # (m, dim) unit rows
    subset: np.ndarray  # sorted index ids of the gap's pool
    uncertainty: np.ndarray  # 1 - confidence of each id in ``subset``
    from_centroid: bool
    k: int
    uncertainty_weight: float
    has_confidence: bool
    note: str | None = None
    note_blocks: str | None = None  # set when the gap cannot be searched at all
    quota: int = 0
    picked: int = 0
    examined: int = 0
    near_duplicates: int = 0
    # the candidates fetched so far, and the state of the greedy picking
    _k: int = field(init=False, repr=False, default=0)
    _ids: np.ndarray = field(init=False, repr=False)
    _sims: np.ndarray = field(init=False, repr=False)
    _scores: np.ndarray = field(init=False, repr=False)
    _vectors: np.ndarray = field(init=False, repr=False)
    _penalty: np.ndarray = field(init=False, repr=False)  # largest cosine to any pick so far
    _alive: np.ndarray = field(init=False, repr=False)

    @classmethod
    def build(
        cls,
        spec: GapSpec,
        example_ids: np.ndarray,
        pool: Pool,
        index: Any,
        *,
        neighbours: int,
        max_queries: int,
        uncertainty_weight: float,
        rng: np.random.Generator,
    ) -> GapSearch:
        """Return the search of gap ``spec`` over the pool restricted to its slice or class."""
        frame = pool.frame
        notes = []
        if spec.kind == "slice":
            if spec.column in frame.columns:
                text = pool.as_text(spec.column)
                mask = text.is_null() if spec.value is None else text == spec.value
                frame = frame.filter(mask.fill_null(False))
            else:
                notes.append(f"pool has no column {spec.column!r}: searched the whole pool")
        frame = frame.sort("_index_id")
        subset = frame["_index_id"].to_numpy()
        uncertainty = frame["_uncertainty"].to_numpy()
        present = example_ids[np.isin(example_ids, index.ids)] if example_ids.size else example_ids
        if present.size < example_ids.size:
            notes.append(f"{example_ids.size - present.size} example(s) not in the index")
        blocked = None
        from_centroid = False
        queries = np.zeros((0, index.dim), dtype=np.float32)
        if not subset.size:
            blocked = "no unlabeled assets to search" + (
                f" in {spec.gap}"
                if spec.kind == "slice" and spec.column in pool.frame.columns
                else ""
            )
        elif present.size:
            if present.size > max_queries:
                present = np.sort(rng.choice(present, max_queries, replace=False))
                notes.append(f"searched from {max_queries} sampled examples")
            queries = unit_rows(index.get_vectors(present))
        elif spec.kind == "slice" and spec.column in pool.frame.columns:
            sample = subset
            if sample.size > _CENTROID_SAMPLE:
                sample = np.sort(rng.choice(subset, _CENTROID_SAMPLE, replace=False))
            queries = unit_rows(index.get_vectors(sample).mean(axis=0, keepdims=True))
            from_centroid = True
            notes.append("no labeled examples: searched from the slice's centroid")
        else:
            blocked = "no labeled examples to search from; label a few or pass examples="
        return cls(
            spec=spec,
            index=index,
            queries=queries,
            subset=subset,
            uncertainty=uncertainty,
            from_centroid=from_centroid,
            k=int(neighbours),
            uncertainty_weight=uncertainty_weight,
            has_confidence=pool.has_confidence,
            note="; ".join(notes) or None,
            note_blocks=blocked,
        )

    # -- candidates ---------------------------------------------------------------------
    def start(self, chosen: np.ndarray) -> None:
        """Fetch the first candidates: about ``neighbours`` (or 10x the quota) in all."""
        self._ids = np.empty(0, np.int64)
        self._sims = np.empty(0, np.float64)
        self._scores = np.empty(0, np.float64)
        self._vectors = np.zeros((0, self.index.dim), np.float32)
        self._penalty = np.empty(0, np.float64)
        self._alive = np.empty(0, bool)
        want = max(self.k, _CANDIDATES_PER_PICK * self.quota)
        per_query = max(_MIN_PER_QUERY, math.ceil(want / max(len(self.queries), 1)))
        self._fetch(int(min(self.subset.size, per_query)), chosen)

    def _fetch(self, k: int, chosen: np.ndarray) -> None:
        self._k = k
        result = self.index.search(self.queries, k=k, subset=self.subset)
        ids = result.ids.ravel()
        sims = result.similarities.ravel().astype(np.float64)
        keep = ids >= 0
        ids, sims = ids[keep], sims[keep]
        order = np.lexsort((ids, -sims))  # best similarity first, then smaller id
        ids, sims = ids[order], sims[order]
        ids, first = np.unique(ids, return_index=True)  # first hit = largest similarity
        sims = sims[first]
        new = ~np.isin(ids, self._ids)
        ids, sims = ids[new], sims[new]
        w = self.uncertainty_weight if self.has_confidence else 0.0
        unc = self.uncertainty[np.searchsorted(self.subset, ids)]
        vectors = unit_rows(self.index.get_vectors(ids)) if ids.size else self._vectors[:0]
        penalty = (
            (vectors @ chosen.T).max(axis=1).astype(np.float64)
            if len(chosen) and ids.size
            else np.full(ids.size, -np.inf)
        )
        self._ids = np.concatenate([self._ids, ids])
        self._sims = np.concatenate([self._sims, sims])
        self._scores = np.concatenate([self._scores, (1 - w) * np.clip(sims, 0, 1) + w * unc])
        self._vectors = np.vstack([self._vectors, vectors])
        self._penalty = np.concatenate([self._penalty, penalty])
        self._alive = np.concatenate([self._alive, np.ones(ids.size, bool)])
        self.examined = int(self._ids.size)

    def best(
        self, chosen: np.ndarray, diversity: float, redundancy: float
    ) -> tuple[int, float, float, np.ndarray] | None:
        """The next pick: best ``score - redundancy * cosine to the nearest pick``, or None."""
        while True:
            near = self._alive & (self._penalty >= diversity - TIE)
            self.near_duplicates += int(near.sum())
            self._alive &= ~near
            if self._alive.any():
                value = self._scores - redundancy * np.maximum(self._penalty, 0.0)
                live = np.flatnonzero(self._alive)
                j = live[np.lexsort((self._ids[live], -value[live]))[0]]
                return int(self._ids[j]), float(self._sims[j]), float(self._scores[j]), j
            if self._k >= self.subset.size:
                return None
            self._fetch(int(min(self.subset.size, self._k * _EXPAND_FACTOR)), chosen)

    def picked_vector(self, j: int) -> np.ndarray:
        """Return the unit vector of the ``j``-th candidate."""
        return self._vectors[j]

    def update(self, index_id: int, vector: np.ndarray) -> None:
        """Account for a pick (by any gap): it is gone, and it penalizes its neighbours."""
        self._alive &= self._ids != index_id
        if self._ids.size:
            self._penalty = np.maximum(self._penalty, self._vectors @ vector)


def pick_candidates(
    searches: Sequence[GapSearch], budget: int, diversity: float, redundancy: float, dim: int
) -> list[tuple[GapSearch, int, float, float]]:
    """Round-robin picking: quotas first, then the leftover budget to gaps with candidates."""
    picks: list[tuple[GapSearch, int, float, float]] = []
    chosen = np.zeros((max(budget, 1), dim), dtype=np.float32)
    exhausted: set[int] = set()
    started: list[GapSearch] = []  # a gap fetches candidates on its first turn

    def take(pos: int, s: GapSearch) -> bool:
        n = len(picks)
        if s not in started:
            s.start(chosen[:n])
            started.append(s)
        found = s.best(chosen[:n], diversity, redundancy)
        if found is None:
            exhausted.add(pos)
            return False
        index_id, sim, score, j = found
        chosen[n] = s.picked_vector(j)
        picks.append((s, index_id, sim, score))
        s.picked += 1
        for other in started:
            other.update(index_id, chosen[n])
        return True

    for beyond_quota in (False, True):
        progress = True
        while progress and len(picks) < budget:
            progress = False
            for pos, s in enumerate(searches):
                if len(picks) >= budget:
                    break
                if pos in exhausted or (not beyond_quota and s.picked >= s.quota):
                    continue
                progress = take(pos, s) or progress
    return picks


def split_budget(budget: int, deficits: Sequence[int]) -> list[int]:
    """Shares of ``budget`` in proportion to ``deficits`` (largest remainder, >= 1 each)."""
    n = len(deficits)
    if not n or budget <= 0:
        return [0] * n
    d = np.asarray(deficits, dtype=np.float64)
    order = sorted(range(n), key=lambda i: -d[i])  # stable: ties keep their order
    if budget <= n:
        quotas = [0] * n
        for i in order[:budget]:
            quotas[i] = 1
        return quotas
    ideal = budget * d / d.sum()
    quotas = np.floor(ideal).astype(int)
    rest = budget - int(quotas.sum())
    by_fraction = sorted(range(n), key=lambda i: (-(ideal[i] - quotas[i]), -d[i], i))
    for i in by_fraction[:rest]:
        quotas[i] += 1
    for i in range(n):
        while quotas[i] < 1:
            donor = max(range(n), key=lambda j: (quotas[j], d[j]))
            quotas[donor] -= 1
            quotas[i] += 1
    return [int(q) for q in quotas]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Return ``vectors`` as float32 rows of unit length (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)
