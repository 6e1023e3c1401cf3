import polars as pl
import pytest
from spacy.language import Language

import enrich
from labeling_functions import LFDefinitionError, spacy_entity_lf, spacy_matcher_lf

DATA = pl.DataFrame(
    {
        "text": [
            "Barack Obama met Angela Merkel in Berlin.",
            "Check out my new channel on YouTube",
            "",
            None,
            "Émilie a visité Paris 🇫🇷",
        ]
    }
)


def test_entity_lf_votes_where_entities_of_the_type_occur():
    lf = spacy_entity_lf("two_people", ["PERSON"], label=1, min_count=2)
    gpe = spacy_entity_lf("place", "GPE", label=0)
    votes = enrich.apply([lf, gpe], DATA, classes=2, progress=False).votes
    assert votes[:, 0].tolist() == [1, -1, -1, -1, -1]
    assert votes[0, 1] == 0 and votes[2, 1] == -1 and votes[3, 1] == -1


def test_matcher_lf_token_patterns_and_phrases():
    lf = spacy_matcher_lf(
        "promo",
        [[{"LOWER": "check"}, {"LOWER": "out"}], "new channel"],
        label="SPAM",
    )
    assert lf.components == frozenset()  # lower-case text needs no trained component
    votes = enrich.apply([lf], DATA, classes=["HAM", "SPAM"], progress=False).votes
    assert votes[:, 0].tolist() == [-1, 1, -1, -1, -1]


def test_components_follow_pattern_attributes():
    lf = spacy_matcher_lf("v", [[{"POS": "VERB"}, {"LEMMA": "be"}]], label=1)
    assert {"tagger", "lemmatizer"} <= lf.components
    assert spacy_entity_lf("e", ["ORG"], label=1).components == {"ner"}


def test_each_text_is_parsed_once_for_all_spacy_lfs(monkeypatch):
    calls = []
    real_pipe = Language.pipe

    def counting_pipe(self, texts, **kwargs):
        texts = list(texts)
        calls.append(len(texts))
        return real_pipe(self, texts, **kwargs)

    monkeypatch.setattr(Language, "pipe", counting_pipe)
    lfs = [
        spacy_entity_lf("person", ["PERSON"], label=1),
        spacy_entity_lf("org", ["ORG"], label=1),
        spacy_matcher_lf("check", ["check out"], label=1),
    ]
    enrich.apply(lfs, DATA, classes=2, progress=False)
    assert calls == [DATA.height]


def test_invalid_matcher_pattern_fails_before_any_work():
    lf = spacy_matcher_lf("bad", [[{"NOT_AN_ATTRIBUTE": "x"}]], label=1)
    with pytest.raises(LFDefinitionError, match="invalid pattern"):
        enrich.apply([lf], DATA, classes=2, progress=False)


def test_bad_patterns_are_refused_at_definition():
    with pytest.raises(LFDefinitionError, match="phrase string or a list of token dicts"):
        spacy_matcher_lf("bad", [42], label=1)
    with pytest.raises(LFDefinitionError, match="entity type names"):
        spacy_entity_lf("bad", [], label=1)


def test_missing_pipeline_says_how_to_install_it():
    lf = spacy_entity_lf("e", ["ORG"], label=1, model="no_such_pipeline_xx")
    with pytest.raises(LFDefinitionError, match="pip install"):
        enrich.apply([lf], DATA, classes=2, progress=False)
