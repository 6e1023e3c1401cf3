"""The numerical core of :class:`~enrich.models.label_model.LabelModel`.

Row scoring (:func:`softmax_rows`, :func:`vote_design`), the EM state of the detector and
annotator vote models (:class:`EMState`), and the helpers of the structure check that decides
between EM and equal weights (a split of the vote patterns, held-out agreement, identical LF
columns). Pure numpy/scipy; no estimator API here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from enrich.errors import InputError
from enrich.models.base import (
    score_rows,
)

__all__ = [
    "CHECK_ROWS",
    "MIN_AGREEMENTS",
    "PACKED_CLASSES",
    "ROLE_NAMES",
    "EMState",
    "WeightedTranspose",
    "agreeing_votes",
    "check_class_names",
    "class_counts",
    "dense_votes",
    "detector_floor",
    "detector_log_lr",
    "equal_weights",
    "hash_rows",
    "held_out_agreement",
    "identical_columns",
    "keep_voted_classes",
    "logistic_pair",
    "majority_proba",
    "needs_vote_guard",
    "packed_codes",
    "packed_proba",
    "posterior",
    "proba",
    "significant_gain",
    "softmax_rows",
    "split_weights",
    "ties_by_model",
    "vote_design",
]

ROLE_NAMES = ("silent", "detector", "annotator")
"""How an LF's votes are modelled, by role id."""
SILENT, DETECTOR, ANNOTATOR = 0, 1, 2

_EPS = 1e-6


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Return the row-wise softmax of ``scores``, computed in place.

    Column loops for small k (numpy reductions over a short axis are slow).
    """
    k = scores.shape[1]
    if k == 2:  # the logistic function of the score difference
        logistic_pair(scores[:, 1] - scores[:, 0], scores)
        return scores
    if k > 8:
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores
    top = scores[:, 0].copy()
    for c in range(1, k):
        np.maximum(top, scores[:, c], out=top)
    scores -= top[:, None]
    np.exp(scores, out=scores)
    total = scores[:, 0].copy()
    for c in range(1, k):
        total += scores[:, c]
    scores /= total[:, None]
    return scores


def logistic_pair(diff: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write ``(1 - p, p)`` with ``p = 1 / (1 + exp(-diff))`` into the two columns of ``out``.

    Each column is ``1 / (1 + exp(...))`` of its own sign of ``diff``, so a tiny probability
    keeps its relative precision (an overflowing ``exp`` gives exactly 0), as
    ``scipy.special.expit`` does, without its import, which costs more than scoring a
    million rows.
    """
    with np.errstate(over="ignore"):
        term = np.exp(-diff)
        term += 1.0
        np.reciprocal(term, out=out[:, 1])
        np.exp(diff, out=term)
        term += 1.0
        np.reciprocal(term, out=out[:, 0])
    return out


def vote_design(patterns: np.ndarray, k: int) -> sp.csr_matrix:
    """Sparse one-hot of the non-abstain votes: entry ``(i, j * k + v)`` is 1 when LF j voted v."""
    n, m = patterns.shape
    flat = np.ascontiguousarray(patterns).ravel()
    at = np.flatnonzero(flat >= 0)  # row-major: the votes of row 0, then row 1, ...
    rows = at // m
    indices = (at - rows * m) * k + flat[at]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    data = np.ones(indices.shape[0], dtype=np.float64)
    return sp.csr_matrix((data, indices, indptr), shape=(n, m * k))


def class_counts(design: sp.csr_matrix, k: int) -> np.ndarray:
    """``(n, k)`` float: how many LFs voted each class on each row, from :func:`vote_design`."""
    n = design.shape[0]
    by_class = sp.csr_matrix((design.data, design.indices % k, design.indptr), shape=(n, k))
    return by_class.toarray()  # repeated classes of a row add up


def majority_proba(counts: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Majority-vote probabilities from :func:`class_counts` (ties split, empty rows -> prior)."""
    small = counts.shape[1] <= 8  # short rows: column loops beat reductions over axis 1
    top = _row_max(counts) if small else counts.max(axis=1)
    proba = (counts == top[:, None]).astype(np.float64)
    proba /= (_row_sum(proba) if small else proba.sum(axis=1))[:, None]
    proba[top == 0] = prior
    return proba


def _class_counts(votes: np.ndarray, k: int) -> np.ndarray:
    """``(n, k)`` float: how many LFs voted each class on each row (one bincount)."""
    n = votes.shape[0]
    codes = votes.astype(np.int64) + 1  # 0 = abstain, c + 1 = class c
    codes += (np.arange(n, dtype=np.int64) * (k + 1))[:, None]
    counts = np.bincount(codes.ravel(), minlength=n * (k + 1)).reshape(n, k + 1)
    return counts[:, 1:].astype(np.float64)


def _row_max(values: np.ndarray) -> np.ndarray:
    """Row maxima of ``(n, k)`` by a loop over the k columns (fast for short rows)."""
    out = values[:, 0].copy()
    for c in range(1, values.shape[1]):
        np.maximum(out, values[:, c], out=out)
    return out


def _row_sum(values: np.ndarray) -> np.ndarray:
    """Row sums of ``(n, k)`` as float by a loop over the k columns (fast for short rows)."""
    out = values[:, 0].astype(np.float64)
    for c in range(1, values.shape[1]):
        out += values[:, c]
    return out


def equal_weights(
    votes: np.ndarray,
    gold: np.ndarray | None,
    row_weight: np.ndarray | None,
    k: int,
    fixed_prior: np.ndarray | None,
    *,
    table: bool = True,
    counts: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Return ``(log_lr, class_balance)`` of majority vote as a label model.

    Every vote adds the same weight to its class, large enough that one net vote beats any
    class-balance difference (so decisions are majority vote's), and the balance, estimated from
    the majority-vote labels of the rows with votes (gold where known), breaks ties and labels
    empty rows.
    ``table=False`` returns only the balance. ``counts``: the :func:`class_counts` of
    ``votes`` where the caller has them.
    """
    n, m = votes.shape
    weight = np.ones(n) if row_weight is None else row_weight
    if fixed_prior is None:
        counts = _class_counts(votes, k) if counts is None else counts
        top = _row_max(counts)
        tied = (counts == top[:, None]) & (top > 0)[:, None]
        n_tied = np.maximum(_row_sum(tied), 1)
        proba = tied / n_tied[:, None]
        if gold is not None:
            known = gold >= 0
            proba[known] = np.eye(k)[gold[known]]
        mass = weight @ proba
        prior = (mass + 1.0) / (mass.sum() + k)
    else:
        prior = fixed_prior
    if not table:
        return None, prior
    # the share of votes that agree with the majority of the other votes on their row
    # (on at most ~20k evenly spaced rows: one shared number needs no more)
    step = max(1, n // 20_000)
    sample, sample_weight = votes[::step], weight[::step]
    counts = _class_counts(sample, k) if counts is None else counts[::step]
    total = _row_sum(counts)
    agree = np.zeros(sample.shape[0])
    if k <= 8:
        for c in range(k):  # the votes for class c on each row, each with the rest of its row
            others = counts.copy()
            others[:, c] -= 1
            top = _row_max(others)
            n_top = _row_sum(others == top[:, None])
            agree += counts[:, c] * (others[:, c] == top) / n_top
    else:  # one entry per vote (rows are long; the loop over classes would be k times k)
        rows, cols = np.nonzero(sample >= 0)
        v = sample[rows, cols].astype(np.int64)
        others = counts[rows]
        others[np.arange(v.size), v] -= 1
        tied = others == others.max(axis=1, keepdims=True)
        share = tied[np.arange(v.size), v] / tied.sum(axis=1)
        agree = np.bincount(rows, weights=share, minlength=sample.shape[0])
    with_others = sample_weight * (total > 1)
    accuracy = float((with_others @ agree + 1.0) / (with_others @ total + 2.0))
    accuracy = min(max(accuracy, 1.0 / k + 0.05), 0.99)
    gap = float(np.log(prior.max()) - np.log(prior.min()))
    strength = max(np.log(accuracy * (k - 1) / (1.0 - accuracy)), gap + 0.05, 0.1)
    out = np.zeros((m, k, k))
    out[:, np.arange(k), np.arange(k)] = strength
    return out, prior


def ties_by_model(
    vote_table: np.ndarray, log_lr: np.ndarray, prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(log_lr, prior)`` of equal weights whose ties the model ``(log_lr, prior)`` breaks.

    ``vote_table`` is :func:`equal_weights`' table (every vote adds the same ``strength`` to
    its class). The model's scores are added scaled down so that, on any row, they move a
    class by less than half a vote: a row's label is still a class with the most votes, and
    among tied classes (and on rows without votes) the one the model prefers. Probabilities
    of tied classes stay close to even.

    Examples
    --------
    >>> vote = np.zeros((2, 2, 2)); vote[:, [0, 1], [0, 1]] = 1.0
    >>> learned = np.log(np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.6, 0.4], [0.4, 0.6]]]))
    >>> table, prior = ties_by_model(vote, learned, np.array([0.5, 0.5]))
    >>> proba(table, prior, np.array([[0, 1], [1, 0], [0, 0]])).argmax(axis=1).tolist()
    [0, 1, 0]
    """
    m, k, _ = log_lr.shape
    strength = float(vote_table[:, np.arange(k), np.arange(k)].min()) if m else 1.0
    # the most the model's scores can differ between two classes on any row
    spread = float((log_lr.max(axis=2) - log_lr.min(axis=2)).max(axis=1).sum())
    spread += float(np.log(prior.max()) - np.log(prior.min()))
    scale = 0.5 * strength / max(spread, 1e-12)
    tilted = scale * np.log(prior)
    tilted = np.exp(tilted - tilted.max())
    return vote_table + scale * log_lr, tilted / tilted.sum()


def _mix(codes: np.ndarray) -> np.ndarray:
    """A 64-bit mixing function (splitmix64's finaliser) over int64 codes."""
    with np.errstate(over="ignore"):
        codes = codes ^ (codes >> np.int64(31))
        codes = codes * np.int64(-4658895280553007687)
        codes = codes ^ (codes >> np.int64(29))
        codes = codes * np.int64(-7723592293110705685)
        return codes ^ (codes >> np.int64(32))


def hash_rows(
    patterns: np.ndarray,
    weight: np.ndarray,
    k: int,
    seed: int,
    *,
    design: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Return a seeded 64-bit hash of each distinct row.

    It depends on the row's votes and on each LF's vote counts, never on the order of the rows
    or of the columns. ``design``: the :func:`vote_design` of ``patterns`` where the caller
    has it.
    """
    n, m = patterns.shape
    if design is None:
        design = vote_design(patterns, k)
    mass = np.asarray(design.T @ weight).reshape(m, k)  # weighted votes of each LF and class
    counts = np.rint(mass * 16).astype(np.int64)  # [j, c]
    coeff = np.random.default_rng(seed).integers(1, 2**62, size=k + 1, dtype=np.int64)
    with np.errstate(over="ignore"):
        column = _mix(counts @ coeff[:k] + coeff[k]) | 1  # one salt per LF, from its counts
        codes = np.zeros(n, dtype=np.int64)
        for j in range(m):  # an abstain (0) adds nothing; wrapping sums, any order
            codes += (patterns[:, j].astype(np.int64) + 1) * column[j]
    return _mix(codes)


def split_weights(
    row_hash: np.ndarray, weight: np.ndarray, size: float | None = None
) -> np.ndarray:
    """``(2, n)``: each distinct row's weight split between two folds by its hash.

    A whole count is halved (an odd row goes to the fold the row's hash picks), a fractional
    weight goes whole to one fold. With ``size``, the weights are first thinned to about
    ``size`` rows in all (each row kept with the same chance, by its hash). The same rows give
    the same split however they are ordered or compressed.
    """
    coin = (row_hash >> np.int64(20)) & 1
    whole = np.all(weight == np.round(weight))
    total = float(weight.sum())
    if size is not None and total > size:
        share = weight * (size / total)
        if whole:
            uniform = ((row_hash >> np.int64(24)) & 0xFFFFFF).astype(np.float64) / 2**24
            share = np.floor(share) + (uniform < share - np.floor(share))
        weight = share
    if whole:
        first = np.floor(weight / 2) + (np.mod(weight, 2) == 1) * coin
    else:
        first = weight * coin
    return np.stack([first, weight - first])


def significant_gain(gain: np.ndarray, weight: np.ndarray) -> float:
    """The weighted mean of ``gain`` when it exceeds twice its standard error, else 0."""
    total = float(weight.sum())
    if gain.size < 2 or not total > 0:
        return 0.0
    mean = float(weight @ gain / total)
    var = float(weight @ (gain - mean) ** 2 / total)
    se = float(np.sqrt(var / max(total - 1.0, 1.0)))  # weights count rows
    return mean if mean > 2.0 * se else 0.0


#: Rows the structure check fits and scores on at most (a seeded share of larger data): its
#: z-test has ample power there, and it keeps the check's two extra EM fits small.
CHECK_ROWS = 10_000


#: Rows on which an LF must agree with another LF for its accuracy to be identifiable.
MIN_AGREEMENTS = 3


def agreeing_votes(votes: np.ndarray, k: int, weight: np.ndarray | None) -> np.ndarray:
    """Per LF, the (weighted) rows where its vote equals another LF's vote on the row."""
    n, m = votes.shape
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    out = np.zeros(m)
    for c in range(k):
        hit = votes == c
        shared = hit.sum(axis=1) >= 2
        if shared.any():
            out += weight[shared] @ hit[shared]
    return out


def identical_columns(patterns: np.ndarray, design: sp.csr_matrix | None = None) -> np.ndarray:
    """For each column, how many columns (itself included) are identical to it.

    Columns are grouped by a seeded hash of where they vote each value (one sparse
    product with ``design``, the :func:`vote_design` of ``patterns``, built here when not
    given); a column whose hash it shares with another is compared with that column vote
    by vote, and a hash collision leaves it on its own.
    """
    n, m = patterns.shape
    if design is None:
        design = vote_design(patterns, max(int(patterns.max(initial=-1)) + 1, 1))
    k = design.shape[1] // m
    salt = np.random.default_rng(0x5EED).random(n) + 1.0
    # each (column, value) sums the salts of its rows in row order: identical columns get
    # bit-identical sums
    sums = np.asarray(design.T @ salt).reshape(m, k)
    _, first, group = np.unique(sums, axis=0, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    shared = np.flatnonzero(np.bincount(group)[group] > 1)
    if shared.size:
        same = np.all(patterns[:, shared] == patterns[:, first[group[shared]]], axis=0)
        group[shared[~same]] = first.size + shared[~same]  # collisions split
    return np.bincount(group)[group].astype(np.float64)


def check_class_names(L: Any, k: int) -> None:
    """Refuse a vote matrix whose own class names disagree with the cardinality."""
    names = getattr(L, "class_names", None)
    if names is not None and len(names) != k:
        raise InputError(
            f"the vote matrix has {len(names)} classes {list(names)} but cardinality={k}; "
            f"set cardinality={len(names)} (or leave the class names out of the matrix)"
        )


def proba(log_lr: np.ndarray, prior: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Return the model probabilities ``(n, k)`` of ``votes`` under ``log_lr`` and ``prior``."""
    m, k, _ = log_lr.shape
    return softmax_rows(score_rows(votes, log_lr.reshape(m * k, k), np.log(prior)))


#: Classes up to which :func:`packed_proba` scores rows four LFs at a time from their bytes.
PACKED_CLASSES = 3
_PACKED_BLOCK = 8_192  # rows per block: the block's votes stay in cache while it is scored


def dense_votes(votes: np.ndarray) -> bool:
    """Whether :func:`packed_proba` should score ``votes``: few LFs, or 15% or more votes.

    Its cost is one lookup per four (or eight) LFs per row, votes or not; on a wide sparse
    matrix scoring only the votes is cheaper.
    """
    n, m = votes.shape
    if m <= 64:
        return True
    sample = votes[:: max(1, n // 2000)]
    return bool((sample >= 0).mean() >= 0.15)


def packed_codes(base: int) -> np.uint32 | None:
    """The multiplier that reads four vote bytes as one code, or None where it cannot.

    Four LFs' shifted votes (``vote + 1``, digits ``0..base-1``), stored as four consecutive
    bytes, are one ``uint32`` word; multiplying the word by this constant (modulo 2**32)
    leaves ``sum_i digit_i * base**i`` in its top byte, provided no byte of the product
    carries into the next one. That holds up to ``base = 4`` (three classes); it is checked
    here on every possible word, in this machine's byte order, and None is returned if it
    fails.
    """
    size = base**4
    if size > 256:
        return None
    multiplier = np.uint32(sum(base**j << (8 * (3 - j)) for j in range(4)))
    digits = (np.arange(size)[:, None] // base ** np.arange(4)[None, :]) % base  # [code, i]
    words = np.frombuffer(digits.astype(np.uint8).tobytes(), dtype=np.uint32)
    if not np.array_equal((words * multiplier) >> np.uint32(24), np.arange(size)):
        return None
    return multiplier


def packed_proba(
    votes: np.ndarray,
    log_lr: np.ndarray,
    score_prior: np.ndarray,
    empty_prior: np.ndarray | None,
    *,
    guard: bool,
    check: Any,
    trusted: np.ndarray | None = None,
) -> np.ndarray | None:
    """Class probabilities of a dense vote matrix of at most three classes, block by block.

    The same probabilities as :func:`proba` followed, where ``guard``, by
    :func:`keep_voted_classes` on the rows with a ``trusted`` vote (``(n_lfs, k)`` bool,
    whether LF j's vote for class v binds its row to the voted classes; None trusts every
    vote) and, where ``empty_prior`` is
    given, by ``empty_prior`` on rows without votes; computed without a sparse design or a
    float copy of the votes.
    Each block of rows is checked (``check(low, high)`` is called with its smallest and
    largest value, and must raise if they are out of range), shifted to bytes ``vote + 1``,
    read as ``uint32`` words of four LFs (:func:`packed_codes`), and scored by one table
    lookup per word (per pair of words for two classes) in tables of every word's summed
    log-likelihood ratios. Rows without votes are the rows whose words are all 0.

    Returns None when the votes cannot be read that way (more than three classes, or a
    byte order the codes do not hold in): the caller then scores them the general way.
    """
    n, m = votes.shape
    k = log_lr.shape[1]
    base = k + 1
    multiplier = packed_codes(base) if 2 <= k <= PACKED_CLASSES else None
    if multiplier is None:
        return None
    size = base**4
    n_words = (m + 3) // 4
    lut = np.zeros((4 * n_words, base, k - 1))  # [j, vote + 1, y - 1] relative to class 0
    lut[:m, 1:, :] = log_lr[:, :, 1:] - log_lr[:, :, :1]
    digits = (np.arange(size)[:, None] // base ** np.arange(4)[None, :]) % base  # [code, i]
    tables = [
        sum(lut[4 * w + i, digits[:, i]] for i in range(4)) for w in range(n_words)
    ]  # [w][code, y - 1]
    voted_bits = None
    if guard:  # the classes each word's votes name, as bits, and 0x80 if one of them binds
        bits = np.where(digits > 0, 1 << np.maximum(digits - 1, 0), 0)  # [code, i]
        keep = np.zeros((4 * n_words, base), dtype=bool)  # [j, vote + 1]
        keep[:m, 1:] = True if trusted is None else trusted
        voted_bits = []
        for w in range(n_words):
            binds = keep[4 * w + np.arange(4)[None, :], digits].any(axis=1)  # [code]
            named = np.bitwise_or.reduce(bits, axis=1) | np.where(binds, 0x80, 0)
            voted_bits.append(named.astype(np.uint8))
    # two classes: pairs of words share one table (a lookup per eight LFs, 52 kB each)
    pairs = k == 2
    lookups: list[tuple[int, int | None, np.ndarray]] = []
    if pairs:
        for w in range(0, n_words, 2):
            second = w + 1 if w + 1 < n_words else None
            other = tables[second] if second is not None else np.zeros((size, 1))
            lookups.append((w, second, (other[:, None, 0] + tables[w][None, :, 0]).ravel()))
    log_base = np.log(score_prior)
    offset = log_base[1:] - log_base[0]
    out = np.empty((n, k))
    block = min(_PACKED_BLOCK, max(n, 1))
    shifted = np.zeros((block, 4 * n_words), dtype=np.int8)
    for start in range(0, n, block):
        part = votes[start : start + block]
        rows = part.shape[0]
        check(int(part.min()), int(part.max()))
        buffer = shifted[:rows]
        np.add(part, 1, out=buffer[:, :m], casting="unsafe")
        words = buffer.view(np.uint32)  # [row, w]
        codes = words * multiplier
        codes >>= np.uint32(24)
        target = out[start : start + rows]
        if pairs:
            diff = None
            for first, second, table in lookups:
                index = codes[:, first].astype(np.intp)
                if second is not None:
                    index += size * codes[:, second]
                looked = table[index]
                diff = looked if diff is None else np.add(diff, looked, out=diff)
            diff += offset[0]
            logistic_pair(diff, target)
        else:
            scores = np.zeros((rows, k))
            for w in range(n_words):
                scores[:, 1:] += tables[w][codes[:, w]]
            scores[:, 1:] += offset
            target[:] = softmax_rows(scores)
        if voted_bits is not None:
            voted = voted_bits[0][codes[:, 0]]
            for w in range(1, n_words):
                voted |= voted_bits[w][codes[:, w]]
            top = target.argmax(axis=1).astype(np.uint8)
            bad = (voted >= 0x80) & ((voted >> top) & 1 == 0)
            if bad.any():
                rows_bad = np.flatnonzero(bad)
                named = (voted[rows_bad, None] >> np.arange(k, dtype=np.uint8)) & 1
                part_bad = target[rows_bad] * named
                target[rows_bad] = part_bad / part_bad.sum(axis=1, keepdims=True)
        if empty_prior is not None:
            any_word = words[:, 0].copy()
            for w in range(1, n_words):
                any_word |= words[:, w]
            empty = np.flatnonzero(any_word == 0)
            if empty.size:
                target[empty] = empty_prior
    return out


def held_out_agreement(
    log_lr: np.ndarray,
    prior: np.ndarray,
    votes: np.ndarray,
    row_weight: np.ndarray | None,
    *,
    design: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return, for every row with two votes or more, its held-out agreement and weight.

    The agreement is how many of its votes the model's label from the rest of the row (that
    vote left out) names (ties share). ``design``: the :func:`vote_design` of ``votes``
    where the caller has it.
    """
    m, k, _ = log_lr.shape
    if design is None:
        design = vote_design(votes, k)
    flat = log_lr.reshape(m * k, k)
    scores = design @ flat + np.log(prior)
    rows, cols = design.nonzero()
    n_votes = np.diff(design.indptr)
    keep = n_votes[rows] >= 2
    rows, cols = rows[keep], cols[keep]
    share = np.empty(rows.size)
    block = max(1, (1 << 22) // k)  # bounded temporaries for many classes
    for start in range(0, rows.size, block):
        r, c = rows[start : start + block], cols[start : start + block]
        rest = scores[r] - flat[c]
        top = _row_max(rest) if k <= 8 else rest.max(axis=1)  # short rows: column loop
        tied = rest >= top[:, None] - 1e-9
        n_tied = _row_sum(tied) if k <= 8 else tied.sum(axis=1)
        share[start : start + block] = tied[np.arange(c.size), c % k] / n_tied
    # one value per row (votes of one row are not independent): its votes predicted right
    per_row = np.bincount(rows, weights=share, minlength=votes.shape[0])
    used = n_votes >= 2
    weight = np.ones(votes.shape[0]) if row_weight is None else row_weight
    return per_row[used], weight[used].astype(np.float64)


def keep_voted_classes(proba: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Restrict each row's probabilities to the classes its LFs voted, where needed (in place).

    On a row with votes whose most probable class no LF voted for, the probabilities of
    the unvoted classes are set to 0 and the rest renormalised: the model never labels a
    row with a class none of its votes names. Rows without votes, and rows whose top class
    was voted, are left as they are. (The detector and equal-weight models never need it;
    an annotator's confusion matrix can point away from every vote.)
    """
    if proba.shape[0] == 0:
        return proba
    top = proba.argmax(axis=1)
    fired = votes >= 0
    bad = fired.any(axis=1) & ~(votes == top[:, None].astype(votes.dtype)).any(axis=1)
    if not bad.any():
        return proba
    rows = np.flatnonzero(bad)
    k = proba.shape[1]
    voted = np.zeros((rows.size, k), dtype=bool)
    r, c = np.nonzero(fired[rows])
    voted[r, votes[rows][r, c]] = True
    part = proba[rows] * voted
    proba[rows] = part / part.sum(axis=1, keepdims=True)
    return proba


def needs_vote_guard(log_lr: np.ndarray, prior: np.ndarray) -> bool:
    """Whether a row with votes could get a class none of its votes names under this table.

    ``False`` when provably impossible: every vote value's increments to the classes it
    does not name are equal (detectors, equal weights; so other votes shift unvoted
    classes alike) and each vote alone beats every class it does not name, by more than
    the prior favours that class. Then :func:`keep_voted_classes` has nothing to do. With
    two classes the first condition always holds.
    """
    m, k, _ = log_lr.shape
    if m == 0:
        return False
    used = np.any(log_lr != 0.0, axis=2)  # [j, v] values that add something
    if not used.any():
        return False
    diag = log_lr[:, np.arange(k), np.arange(k)]  # [j, v]
    off = np.where(np.eye(k, dtype=bool)[None, :, :], -np.inf, log_lr)  # [j, v, y != v]
    top_off = off.max(axis=2)
    if k > 2:
        low_off = np.where(np.eye(k, dtype=bool)[None, :, :], np.inf, log_lr).min(axis=2)
        if np.any((top_off - low_off)[used] > 1e-9):
            return True
    log_prior = np.log(prior)
    favour = log_prior[None, :] - log_prior[:, None]  # [v, t]: how much the prior prefers t
    np.fill_diagonal(favour, 0.0)
    need = np.maximum(favour.max(axis=1), 0.0)  # [v]
    return bool(np.any((diag - top_off)[used] <= need[None, :].repeat(m, 0)[used] + 1e-9))


def detector_floor(prior: np.ndarray, margin: float) -> np.ndarray:
    """Lowest precision ``(k,)`` a detector of each class may have under the class balance.

    A vote for class c must raise c's probability (precision above the base rate
    ``pi_c``) and a lone vote must name c: ``rho / (1 - rho) > max_{y != c} pi_y / (1 - pi_c)``.
    Together they make the detector model never prefer a class no detector voted for on a
    row with detector votes (see :func:`detector_log_lr`). ``margin`` is added on top.
    """
    k = prior.size
    if k == 1:
        return np.ones(1)
    order = np.argsort(prior)
    top, second = prior[order[-1]], prior[order[-2]]
    other_max = np.where(np.arange(k) == order[-1], second, top)
    ratio = other_max / np.maximum(1.0 - prior, _EPS)
    floor = np.maximum(prior, ratio / (1.0 + ratio)) + margin
    return np.minimum(floor, 1.0 - 1e-4)


def detector_log_lr(rho: np.ndarray, prior: np.ndarray, voted: np.ndarray) -> np.ndarray:
    """``(d, k, k)`` log-likelihood ratios of detectors with precisions ``rho`` ``(d, k)``.

    Detector j voting c says ``P(y = c | vote) = rho_jc`` and spreads the rest over the other
    classes by their balance, ``P(y | vote) = (1 - rho_jc) pi_y / (1 - pi_c)``: the vote adds
    ``log(rho_jc / pi_c)`` to class c and the same ``log((1 - rho_jc) / (1 - pi_c))`` to every
    other class, so it never favours one unvoted class over another (a uniform spread would
    add ``-log pi_y`` per vote and let rare classes win once precisions are low). Values a
    detector never votes (``voted[d, v]`` False) add nothing.
    """
    d, k = rho.shape
    log_prior = np.log(prior)
    wrong = np.log(1.0 - rho) - np.log(np.maximum(1.0 - prior, _EPS))[None, :]  # [d, v]
    block = np.broadcast_to(wrong[:, :, None], (d, k, k)).copy()
    block[:, np.arange(k), np.arange(k)] = np.log(rho) - log_prior[None, :]
    block[~voted] = 0.0
    return block


class WeightedTranspose:
    """``design.T @ diag(weights)`` as an operator, without building the weighted copy.

    Applied to posteriors ``q`` of two classes (rows summing to 1) it takes one sparse
    product, of the second column: the first is each design column's total weight less it.
    """

    def __init__(self, design: sp.csr_matrix, weights: np.ndarray) -> None:
        self.design_t = design.T  # CSC view, no copy
        self.weights = weights[:, None]
        self.totals = np.asarray(self.design_t @ weights)  # [j * k + v]

    def __matmul__(self, q: np.ndarray) -> np.ndarray:
        if q.shape[1] == 2:
            second = np.asarray(self.design_t @ (q[:, 1] * self.weights[:, 0]))
            first = np.maximum(self.totals - second, 0.0)
            return np.column_stack([first, second])
        return np.asarray(self.design_t @ (q * self.weights))


def posterior(design: sp.csr_matrix, table: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The E step: ``softmax(design @ table + log prior)``, ``(n, k)`` (``table`` ``(m*k, k)``).

    With two classes only the score difference is computed (one sparse product).
    """
    if prior.size == 2:
        diff = design @ (table[:, 1] - table[:, 0])
        diff += np.log(prior[1]) - np.log(prior[0])
        return logistic_pair(diff, np.empty((diff.size, 2)))
    scores = design @ table
    scores += np.log(prior)
    return softmax_rows(scores)


class EMState:
    """The M-step: parameters (as log-likelihood ratios) from count-weighted posteriors."""

    def __init__(
        self,
        *,
        k: int,
        m: int,
        roles: np.ndarray,
        vote_counts: np.ndarray,
        n_total: float,
        detector_prior: float,
        on_diag: float,
        off_diag: float,
        margin: float,
        fixed_prior: np.ndarray | None,
        weights: np.ndarray,
    ) -> None:
        self.k, self.m = k, m
        self.weights = weights
        self.roles = roles
        self.vote_counts = vote_counts
        self.n_total = n_total
        self.detector_prior = detector_prior
        self.dirichlet = np.full((k, k), off_diag) + np.eye(k) * on_diag  # [y, v]
        self.margin = margin
        self.fixed_prior = fixed_prior
        self.det = np.flatnonzero(roles == DETECTOR)
        self.ann = np.flatnonzero(roles == ANNOTATOR)
        # a detector's own class (the only one it votes when lf_kind="auto")
        self.target = np.argmax(vote_counts, axis=1)

    def sufficient(self, weighted_design_t: WeightedTranspose, q: np.ndarray) -> np.ndarray:
        """``S[j, v, y]``: count-weighted posterior mass of class y over rows where j voted v."""
        return np.asarray(weighted_design_t @ q).reshape(self.m, self.k, self.k)

    def class_prior(self, q_mass: np.ndarray) -> np.ndarray:
        """Return the class balance of the M step (the fixed one when given)."""
        if self.fixed_prior is not None:
            return self.fixed_prior
        prior = (q_mass + 1.0) / (self.n_total + self.k)
        return prior / prior.sum()

    def detector_precision(self, stats: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """``rho[d, v]`` for detectors: precision of each vote value, shrunk to a shared one.

        The shrinkage target is the pooled precision of every detector (the share of all
        detector votes the posteriors call right), with ``detector_prior`` pseudo-votes: a
        detector's precision moves away from its peers' only as far as the rows where its
        vote meets other votes support (a lone vote is a fixed point of EM and says nothing
        about its own LF). Its own class keeps a floor: at least the base rate of the class
        (a vote never lowers its class's probability) and enough for a lone vote to name its
        class (see :func:`detector_floor`).
        """
        k = self.k
        hits = stats[self.det][:, np.arange(k), np.arange(k)]  # [d, v]
        counts = self.vote_counts[self.det]
        total = float(counts.sum())
        shared = float(hits.sum()) / total if total > 0 else 1.0 / k
        rho = (hits + self.detector_prior * shared) / (counts + self.detector_prior)
        # every value a detector votes (its class, and its few stray votes) stays evidence
        rho = np.maximum(rho, detector_floor(prior, self.margin)[None, :])
        return np.clip(rho, _EPS, 1.0 - _EPS)

    def m_step(
        self, weighted_design_t: WeightedTranspose, q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the M step: updated log likelihood ratios and class balance."""
        k = self.k
        stats = self.sufficient(weighted_design_t, q)
        prior = self.class_prior(self.weights @ q)
        log_lr = np.zeros((self.m, k, k))
        if self.ann.size:
            conf = stats[self.ann].transpose(0, 2, 1) + self.dirichlet  # [a, y, v]
            conf /= conf.sum(axis=2, keepdims=True)
            log_lr[self.ann] = np.log(conf).transpose(0, 2, 1)  # [a, v, y]
        if self.det.size:
            rho = self.detector_precision(stats, prior)  # [d, v]
            log_lr[self.det] = detector_log_lr(rho, prior, self.vote_counts[self.det] > 0)
        return log_lr, prior

    def precision(self, weighted_design_t: WeightedTranspose, q: np.ndarray) -> np.ndarray:
        """``P(y = v | LF votes v)`` per LF and class under the fitted posteriors (unclipped)."""
        stats = self.sufficient(weighted_design_t, q)
        hits = stats[:, np.arange(self.k), np.arange(self.k)]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = hits / self.vote_counts
        out[self.vote_counts == 0] = np.nan
        out[self.roles == SILENT] = np.nan
        return out

    def confusion(self, log_lr: np.ndarray, prior: np.ndarray, coverage: np.ndarray) -> np.ndarray:
        """``P(vote | y)`` per LF with the abstain probability in column 0 (descriptive)."""
        k, m = self.k, self.m
        out = np.zeros((m, k, k + 1))
        out[:, :, 0] = 1.0
        rates = self.vote_counts / max(self.n_total, 1.0)  # P(LF j votes v)
        for j in range(m):
            if self.roles[j] == SILENT:
                continue
            if self.roles[j] == ANNOTATOR:
                fire = coverage[j]
                p_vote = fire * np.exp(log_lr[j]).T  # [y, v]
            else:
                # P(vote v | y) = P(v) * P(y | v) / P(y) = P(v) * exp(log_lr)
                p_vote = rates[j][None, :] * np.exp(log_lr[j]).T
                p_vote[:, rates[j] == 0] = 0.0
            p_vote = np.clip(p_vote, 0.0, 1.0)
            total = p_vote.sum(axis=1)
            scale = np.where(total > 1.0, 1.0 / np.maximum(total, _EPS), 1.0)
            p_vote *= scale[:, None]
            out[j, :, 1:] = p_vote
            out[j, :, 0] = 1.0 - p_vote.sum(axis=1)
        return out
