"""The contract every enrich label model keeps (the label-model analogue of scikit-learn's
estimator checks), run over LabelModel, MajorityVote and the Snorkel adapter.

Save/load is checked for all three: each stores its fitted state as JSON.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from sklearn.base import clone

from enrich.errors import InputError, NotFittedError
from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote
from enrich.models.snorkel import SnorkelLabelModel

K = 3

FACTORIES = {
    "LabelModel": lambda seed=0: LabelModel(cardinality=K, random_state=seed),
    "MajorityVote": lambda seed=0: MajorityVote(cardinality=K, random_state=seed),
    "SnorkelLabelModel": lambda seed=0: SnorkelLabelModel(cardinality=K, random_state=seed),
}


def simulated_votes(n: int = 400, m: int = 6, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Votes of ``m`` noisy LFs (accuracy 0.6-0.9, coverage 0.3-0.8) on ``n`` assets."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    votes = np.full((n, m), -1)
    for j in range(m):
        fire = rng.random(n) < rng.uniform(0.3, 0.8)
        right = rng.random(n) < rng.uniform(0.6, 0.9)
        wrong = (y + rng.integers(1, K, n)) % K
        votes[:, j] = np.where(fire, np.where(right, y, wrong), -1)
    votes[:5] = -1  # a few assets no LF voted on
    return votes, y


@pytest.fixture(scope="module")
def votes() -> np.ndarray:
    return simulated_votes()[0]


@pytest.fixture(params=sorted(FACTORIES))
def make(request):
    return FACTORIES[request.param]


def test_fit_returns_self_and_leaves_params_untouched(make, votes):
    model = make()
    before = {
        k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in model.get_params().items()
    }
    assert model.fit(votes) is model
    assert model.get_params() == before
    cloned = clone(model)
    assert cloned.get_params() == before
    assert not hasattr(cloned, "class_balance_")


def test_unfitted_model_raises_not_fitted(make, votes, tmp_path):
    model = make()
    for call in (model.predict_proba, model.predict):
        with pytest.raises(NotFittedError, match="not fitted"):
            call(votes)
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "m.json")


def test_probabilities_are_rows_that_sum_to_one(make, votes):
    model = make().fit(votes)
    proba = model.predict_proba(votes)
    assert proba.shape == (len(votes), K)
    assert np.all(proba >= 0) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict(votes), proba.argmax(axis=1))
    assert np.allclose(proba[:5], model.class_balance_)  # all-abstain rows get the prior


def test_same_seed_same_output(make, votes):
    first = make(7).fit(votes).predict_proba(votes)
    second = make(7).fit(votes).predict_proba(votes)
    assert np.array_equal(first, second)


def test_fit_does_not_touch_global_rngs(make, votes):
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()
    make(5).fit(votes)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])


def test_batch_equals_whole(make, votes):
    model = make().fit(votes)
    whole = model.predict_proba(votes)
    parts = np.concatenate(
        [model.predict_proba(votes[i : i + 37]) for i in range(0, len(votes), 37)]
    )
    assert np.allclose(parts, whole, atol=1e-12)


def test_save_load_round_trip_is_json(make, votes, tmp_path):
    model = make().fit(votes)
    path = tmp_path / "model.json"
    model.save(path)
    payload = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, no pickle
    assert payload["format"].startswith("enrich.")
    loaded = type(model).load(path)
    assert loaded.get_params() == model.get_params()
    assert np.allclose(loaded.predict_proba(votes), model.predict_proba(votes), atol=1e-12)
    assert np.array_equal(loaded.predict(votes), model.predict(votes))


def test_load_refuses_another_models_file(make, votes, tmp_path):
    model = make().fit(votes)
    path = tmp_path / "model.json"
    model.save(path)
    others = [
        cls for cls in (LabelModel, MajorityVote, SnorkelLabelModel) if cls is not type(model)
    ]
    for other in others:
        with pytest.raises(InputError, match="load it with the class that saved it"):
            other.load(path)
    (tmp_path / "junk.json").write_text("not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a saved model"):
        type(model).load(tmp_path / "junk.json")


def test_bad_votes_are_refused_with_the_value(make, votes):
    model = make().fit(votes)
    with pytest.raises(InputError, match=r"4 columns but the model was fitted on 6"):
        model.predict_proba(votes[:, :4])
    bad = votes.copy()
    bad[2, 1] = K
    with pytest.raises(InputError, match=rf"holds {K} at row 2, column 1.*cardinality={K}"):
        model.predict_proba(bad)
    with pytest.raises(InputError, match=r"non-integer value -0\.5 at row 0, column 0"):
        make().fit(votes + 0.5)
