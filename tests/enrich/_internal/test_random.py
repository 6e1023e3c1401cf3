"""The one random_state policy: None, an int or a Generator; the same stream as default_rng."""

import numpy as np
import pytest

from enrich._internal.random import check_random_state
from enrich.errors import InputError
from enrich.models.base import check_random_state as models_check_random_state


@pytest.mark.parametrize("seed", [0, 7, np.int64(12345), 2**40])
def test_an_int_seed_gives_default_rngs_stream(seed):
    ours = check_random_state(seed)
    assert isinstance(ours, np.random.Generator)
    assert np.array_equal(ours.random(20), np.random.default_rng(seed).random(20))


def test_a_generator_is_used_as_given_and_none_draws_fresh_entropy():
    generator = np.random.default_rng(3)
    assert check_random_state(generator) is generator
    first, second = check_random_state(None), check_random_state(None)
    assert isinstance(first, np.random.Generator)
    assert not np.array_equal(first.random(8), second.random(8))


@pytest.mark.parametrize("bad", [True, 1.5, "seed", np.random.RandomState(0), [1]])
def test_anything_else_is_refused_with_the_value_and_what_is_allowed(bad):
    with pytest.raises(InputError) as caught:
        check_random_state(bad)
    message = str(caught.value)
    assert "random_state must be None, an int or a numpy Generator" in message
    assert repr(bad)[:10] in message and "random_state=0" in message
    assert isinstance(caught.value, ValueError)


def test_the_models_validate_with_the_same_helper():
    assert models_check_random_state is check_random_state


def test_no_global_generator_is_touched():
    np.random.seed(5)
    expected = np.random.random(3)
    np.random.seed(5)
    check_random_state(0).random(100)
    check_random_state(None).random(100)
    assert np.array_equal(np.random.random(3), expected)
