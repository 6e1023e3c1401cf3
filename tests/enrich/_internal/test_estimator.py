"""enrich's models keep scikit-learn's estimator conventions without inheriting from it."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils import get_tags

from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote


@pytest.mark.parametrize("model", [LabelModel(cardinality=3, detector_prior=5.0), MajorityVote()])
def test_scikit_learn_clones_and_tags_the_models(model):
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params() == model.get_params()
    assert get_tags(model).target_tags.required is False


def test_set_params_changes_known_parameters_and_names_the_valid_ones():
    model = LabelModel(cardinality=2)
    assert model.set_params(cardinality=4, random_state=7) is model
    assert model.get_params()["cardinality"] == 4 and model.random_state == 7
    with pytest.raises(ValueError, match=r"'cardinalty' is not a parameter of LabelModel.*"):
        model.set_params(cardinalty=3)
    assert model.cardinality == 4


def test_repr_shows_the_parameters_that_differ_from_their_defaults():
    assert repr(MajorityVote()) == "MajorityVote()"
    model = MajorityVote(cardinality=3, class_balance=np.array([0.2, 0.3, 0.5]))
    assert repr(model) == "MajorityVote(cardinality=3, class_balance=array([0.2, 0.3, 0.5]))"
