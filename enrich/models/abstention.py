"""The class mix of rows without votes, from class-conditional abstention.

A row no LF voted on is not a random row: if the LFs of one class fire more often than those
of another, the silent rows are mostly the poorly covered class. Under conditional
independence of the LFs' firing given the class,
``P(y | no votes) ∝ P(y) * prod_j (1 - a_jy)`` with ``a_jy = P(LF j votes | y)``.
:func:`silent_mix` estimates it by EM on the firing indicators, with the voted rows' class
posteriors fixed (those of the fitted label model) and the silent rows' own class mix unknown.
The product is overconfident where LFs are correlated (copies of an LF fire together, so the
class they cover looks fully covered), and it is unidentified where a class's LFs never meet.
:func:`empty_row_balance` therefore adopts it only where it predicts held-out data better than
the voted rows' balance: fitted on one half of the rows with each LF left out in turn, it must
predict whether that LF fires on the other half's rows where no other LF fired (the rows whose
class mix is the thing being extrapolated) better than the voted balance does, by more than two
standard errors; and the number of silent rows the model implies must not fall short of the
observed number by more than two standard errors (dependent LFs make it fall short).
"""

from __future__ import annotations

import numpy as np

from enrich.models.em import CHECK_ROWS, _mix, hash_rows, significant_gain, split_weights

__all__ = ["empty_row_balance", "implied_silent_rows", "silent_mix"]

_MAX_ITER = 500
_TOL = 1e-9
_CEIL = 1.0 - 1e-9  # a class-conditional coverage below 1 keeps log(1 - a) finite


def _firing(patterns: np.ndarray) -> np.ndarray:
    """``(n, m')`` bool: where each LF fired, one column per distinct firing column."""
    fired = patterns >= 0
    if fired.shape[1] > 1:
        fired = np.unique(fired, axis=1)  # copies fire together: one piece of evidence
    return fired


def _iterate(
    voted_mass: np.ndarray, silent: np.ndarray, fire_mass: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """EM for the silent rows' class mix; every argument has a leading batch axis ``b``.

    ``voted_mass`` ``(b, k)``: class mass of the voted rows; ``silent`` ``(b,)``: weight of
    the silent rows; ``fire_mass`` ``(b, m, k)``: class mass of the rows each LF fired on;
    ``start`` ``(b, k)``: the initial mix. Returns the mix ``(b, k)``.
    """
    mix = start
    for _ in range(_MAX_ITER):
        total = voted_mass + silent[:, None] * mix  # (b, k) class sizes
        cover = np.minimum(fire_mass / np.maximum(total, 1e-300)[:, None, :], _CEIL)
        log_silent = np.log(np.maximum(total, 1e-300)) + np.log1p(-cover).sum(axis=1)
        log_silent -= log_silent.max(axis=1, keepdims=True)
        new = np.exp(log_silent)
        new /= new.sum(axis=1, keepdims=True)
        change = float(np.max(np.abs(new - mix)))
        mix = new
        if change < _TOL:
            break
    return mix


def silent_mix(patterns: np.ndarray, weight: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Return the class mix of the rows without votes under class-conditional abstention.

    Parameters
    ----------
    patterns
        ``(n, m)`` vote patterns (``-1`` = abstain).
    weight
        ``(n,)`` count of each pattern.
    post
        ``(n, k)`` class posteriors of the patterns (those of rows without votes are ignored).

    Returns
    -------
    numpy.ndarray
        ``(k,)``: ``P(y | no votes) ∝ P(y) prod_j (1 - P(LF j votes | y))``, fitted by EM
        with the voted rows' posteriors fixed, started from their balance (where the data
        cannot tell, the mix stays there).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 4000)
    >>> recall = np.array([0.5, 0.5, 0.5, 0.1, 0.1, 0.1])  # class 0 well covered, 1 poorly
    >>> target = np.array([0, 0, 0, 1, 1, 1])
    >>> fire = (rng.random((4000, 6)) < recall) & (y[:, None] == target)
    >>> L = np.where(fire, target, -1)
    >>> post = np.eye(2)[np.where(fire[:, :3].any(axis=1), 0, 1)]
    >>> mix = silent_mix(L, np.ones(4000), post)
    >>> bool(mix[1] > 0.75)  # rows without a vote: 0.5**3 of class 0, 0.9**3 of class 1
    True
    """
    fired = _firing(patterns)
    voted = fired.any(axis=1)
    w = np.asarray(weight, dtype=np.float64)
    mass = w[:, None] * post
    voted_mass = mass[voted].sum(axis=0)
    fire_mass = fired.T.astype(np.float64) @ mass  # (m, k)
    silent = float(w[~voted].sum())
    start = (voted_mass + 1.0) / (voted_mass.sum() + post.shape[1])
    return _iterate(voted_mass[None], np.array([silent]), fire_mass[None], start[None])[0]


def _leave_one_out(
    fired: np.ndarray, weight: np.ndarray, post: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per LF j, fitted with j left out: the silent mix, the voted balance, ``P(j fires | y)``.

    Rows where only j fired count as silent when j is left out; ``P(j fires | y)`` comes
    from the rows where another LF fired (their class is known to the model without j).
    """
    n_fired = fired.sum(axis=1)
    mass = weight[:, None] * post
    voted_mass = mass[n_fired > 0].sum(axis=0)
    fire_mass = fired.T.astype(np.float64) @ mass  # (m, k)
    alone = fired & (n_fired == 1)[:, None]  # (n, m): only this LF fired on the row
    alone_mass = alone.T.astype(np.float64) @ mass  # (m, k)
    silent = float(weight[n_fired == 0].sum()) + alone.T.astype(np.float64) @ weight  # (m,)
    voted_j = voted_mass[None, :] - alone_mass  # (m, k): rows another LF fired on
    m = fired.shape[1]
    others = np.repeat(fire_mass[None], m, axis=0)  # (m, m, k)
    others[np.arange(m), np.arange(m)] = 0.0  # LF j itself is left out of its own fit
    balance = (voted_j + 1.0) / (voted_j.sum(axis=1, keepdims=True) + post.shape[1])
    mix = _iterate(voted_j, silent, others, balance)
    cover = np.clip((fire_mass - alone_mass) / np.maximum(voted_j, 1e-300), 1e-6, 1 - 1e-6)
    return mix, balance, cover


def implied_silent_rows(patterns: np.ndarray, weight: np.ndarray, post: np.ndarray) -> np.ndarray:
    """Return, per column of ``weight``, how many rows without votes the model implies.

    Each class's size ``n_y`` solves ``voted_y = n_y (1 - prod_j (1 - c_jy / n_y))`` (its
    voted rows are the rows of the class some LF fired on, under conditional independence),
    where ``c_jy`` is the class mass of the rows LF j fired on; the implied silent rows are
    ``sum_y (n_y - voted_y)``. A class whose LFs never meet has no finite solution and is
    capped at all the silent rows. Positively dependent LFs (copies, families sharing a
    trigger) make a class look better covered than it is, so the implied number falls short
    of the observed one: the check of :func:`empty_row_balance`.

    Parameters
    ----------
    patterns
        ``(n, m)`` vote patterns (``-1`` = abstain).
    weight
        ``(n,)`` or ``(n, b)``: count of each pattern (``b`` resampled sets of counts).
    post
        ``(n, k)`` class posteriors of the patterns.

    Returns
    -------
    numpy.ndarray
        ``(b,)`` (or a scalar array for one-dimensional ``weight``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> fire = rng.random((20000, 3)) < 0.3  # three independent LFs of one class
    >>> L = np.where(fire, 0, -1)
    >>> rows = implied_silent_rows(L, np.ones(20000), np.ones((20000, 1)))
    >>> bool(abs(rows - (~fire.any(axis=1)).sum()) < 300)  # 0.7**3 of 20000 are silent
    True
    """
    fired = _firing(patterns).astype(np.float64)
    w = np.asarray(weight, dtype=np.float64)
    flat = w.ndim == 1
    w = w[:, None] if flat else w  # (n, b)
    voted_row = fired.any(axis=1)
    silent = w[~voted_row].sum(axis=0)  # (b,)
    voted = np.einsum("nb,nk->bk", w[voted_row], post[voted_row])  # (b, k)
    fire_mass = np.einsum("nm,nb,nk->bmk", fired, w, post)  # (b, m, k)
    low = np.maximum(fire_mass.max(axis=1), voted)  # (b, k)
    high = voted + silent[:, None]
    low = np.minimum(low, high)

    def covered(size: np.ndarray) -> np.ndarray:
        share = np.minimum(fire_mass / np.maximum(size, 1e-300)[:, None, :], _CEIL)
        return size * -np.expm1(np.log1p(-share).sum(axis=1))

    lo, hi = np.log(np.maximum(low, 1e-12)), np.log(np.maximum(high, 1e-12))
    for _ in range(60):  # bisection in log size: the covered rows grow with the class size
        mid = 0.5 * (lo + hi)
        below = covered(np.exp(mid)) < voted
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    size = np.where(covered(high) < voted, high, np.exp(hi))
    out = np.maximum(size - voted, 0.0).sum(axis=1)
    return out[0] if flat else out


#: Resampled sets of counts for the standard error of the implied silent rows.
_BOOTSTRAP = 100


def _resampled(weight: np.ndarray, row_hash: np.ndarray) -> np.ndarray:
    """Return ``(n, _BOOTSTRAP)`` resampled counts, Gamma(count) draws (Wilson-Hilferty).

    Their normal deviates come from each row's hash, so they follow the row, not its
    position.
    """
    from scipy.special import ndtri

    draws = np.arange(1, _BOOTSTRAP + 1, dtype=np.int64) * np.int64(-7046029254386353131)
    with np.errstate(over="ignore"):
        bits = _mix(row_hash[:, None] + draws[None, :])
    uniform = ((bits >> np.int64(11)) & ((1 << 53) - 1)).astype(np.float64) + 0.5
    normal = ndtri(uniform / 2.0**53)
    shape = np.maximum(weight, 1e-12)[:, None]
    root = np.maximum(1.0 - 1.0 / (9.0 * shape) + normal * np.sqrt(1.0 / (9.0 * shape)), 0.0)
    return shape * root**3 * (weight > 0)[:, None]


def empty_row_balance(
    patterns: np.ndarray,
    weight: np.ndarray,
    post: np.ndarray,
    fallback: np.ndarray,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, bool]:
    """Return the class mix for rows without votes, and whether abstention modelling won.

    The class-conditional estimate of :func:`silent_mix` is adopted only when, fitted on
    one fold with each LF j left out, it predicts whether j fires on the other fold's rows
    where no other LF fired better (binomial log-likelihood, per row) than the voted
    balance with the same ``P(j fires | y)`` does, by more than two standard errors (both
    folds in turn); and when the number of silent rows it implies
    (:func:`implied_silent_rows`) does not fall short of the observed number by more than
    two standard errors (from 100 resampled sets of counts), the sign of positively
    dependent LFs. Otherwise ``fallback`` is returned. The folds and the resampled counts
    come from a hash of each pattern seeded by ``seed`` (at most ``CHECK_ROWS`` rows are
    checked), so the answer depends neither on the order of the rows nor of the columns.

    Parameters
    ----------
    patterns
        ``(n, m)`` distinct vote patterns (``-1`` = abstain): identical rows must be one
        pattern with their count, or the split puts them all in one fold.
    weight
        ``(n,)`` count of each pattern.
    post
        ``(n, k)`` class posteriors of the patterns from the fitted label model.
    fallback
        ``(k,)`` the mix used when the check does not adopt the estimate.

    Returns
    -------
    tuple
        ``(mix, adopted)``: the ``(k,)`` mix and whether it is the class-conditional one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 6000)
    >>> recall = np.array([0.5, 0.5, 0.5, 0.1, 0.1, 0.1])
    >>> target = np.array([0, 0, 0, 1, 1, 1])
    >>> fire = (rng.random((6000, 6)) < recall) & (y[:, None] == target)
    >>> patterns, counts = np.unique(np.where(fire, target, -1), axis=0, return_counts=True)
    >>> post = np.eye(2)[np.where((patterns[:, :3] >= 0).any(axis=1), 0, 1)]
    >>> mix, adopted = empty_row_balance(patterns, counts, post, np.array([0.6, 0.4]))
    >>> adopted, int(mix.argmax())
    (True, 1)
    """
    w = np.asarray(weight, dtype=np.float64)
    k = post.shape[1]
    row_hash = hash_rows(patterns, w, k, seed)
    folds = split_weights(row_hash, w, size=CHECK_ROWS)
    fired = _firing(patterns)
    n_fired = fired.sum(axis=1)
    if fired.shape[1] < 2 or not (n_fired == 0).any():
        return fallback, False
    gains, gain_weight = [], []
    for f in range(2):
        train, test = folds[1 - f], folds[f]
        use = train > 0
        if not use.any() or not (test > 0).any():
            continue
        mix, balance, cover = _leave_one_out(fired[use], train[use], post[use])
        p_model = np.clip(np.sum(mix * cover, axis=1), 1e-9, 1 - 1e-9)  # (m,)
        p_base = np.clip(np.sum(balance * cover, axis=1), 1e-9, 1 - 1e-9)
        # rows of the test fold where no other LF fired: silent rows predict every LF's
        # silence, a row with one vote predicts that LF firing
        silent_gain = float(np.sum(np.log1p(-p_model) - np.log1p(-p_base)))
        fire_gain = np.log(p_model) - np.log(p_base)
        rows = (test > 0) & (n_fired <= 1)
        lone = np.argmax(fired[rows], axis=1)
        gain = np.where(n_fired[rows] == 0, silent_gain, fire_gain[lone])
        gains.append(gain)
        gain_weight.append(test[rows])
    if not gains:
        return fallback, False
    if significant_gain(np.concatenate(gains), np.concatenate(gain_weight)) <= 0:
        return fallback, False
    # the model's own number of silent rows must not fall short of the observed one by
    # more than two standard errors (from resampled counts): positively dependent LFs
    # (copies, families sharing a trigger) make it fall short, and the product then puts
    # the silent rows on whichever class has the least dependent LFs
    both = folds.sum(axis=0)
    use = both > 0
    sample, sample_weight, sample_post = patterns[use], both[use], post[use]
    silent_rows = ~(sample >= 0).any(axis=1)
    resampled = _resampled(sample_weight, row_hash[use])
    gaps = implied_silent_rows(sample, resampled, sample_post) - resampled[silent_rows].sum(axis=0)
    if np.quantile(gaps, 0.975) < 0:  # the estimate is skewed: a percentile interval
        return fallback, False
    mix = silent_mix(patterns, w, post)
    silent = float(w[n_fired == 0].sum())
    return (mix * silent + 1.0) / (silent + mix.size), True  # add-one: every class possible
