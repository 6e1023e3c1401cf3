"""One ``random_state`` policy for all of enrich: resolved locally, never a global reseed.

``random_state`` is None (fresh entropy: results vary from call to call), an int (a seed:
the same results every time) or a :class:`numpy.random.Generator` (used as given, so one
generator can drive several steps). :func:`check_random_state` turns it into a Generator;
an int seed gives exactly ``numpy.random.default_rng(seed)``'s stream.

>>> rng = check_random_state(7)
>>> rng.integers(100, size=3).tolist() == np.random.default_rng(7).integers(100, size=3).tolist()
True
>>> generator = np.random.default_rng(1)
>>> check_random_state(generator) is generator
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from enrich.errors import InputError

__all__ = ["RandomState", "check_random_state"]

RandomState = int | np.integer | np.random.Generator | None
"""What a ``random_state`` option accepts."""


def check_random_state(random_state: Any) -> np.random.Generator:
    """The generator ``random_state`` asks for.

    Parameters
    ----------
    random_state
        None (fresh entropy), an int seed (``numpy.random.default_rng(seed)``) or a
        :class:`numpy.random.Generator` (returned as is, not copied).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    InputError
        Anything else (a bool, a float, a string, the legacy ``numpy.random.RandomState``).

    Examples
    --------
    >>> check_random_state(0).random() == np.random.default_rng(0).random()
    True
    >>> check_random_state("seed")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    enrich.errors.InputError: random_state must be None, an int or a numpy Generator; got 'seed' ...
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, int | np.integer) and not isinstance(random_state, bool)
    ):
        return np.random.default_rng(random_state)
    raise InputError(
        f"random_state must be None, an int or a numpy Generator; got {random_state!r} "
        f"({type(random_state).__name__}); pass e.g. random_state=0 for repeatable results"
    )
