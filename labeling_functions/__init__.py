"""Labeling functions: small frozen objects that vote for a class or abstain.

>>> from labeling_functions import ABSTAIN, keyword_lf
>>> keyword_lf("subscribe", ["subscribe"], label="SPAM").columns
('text',)
"""

from labeling_functions.builders import (
    ExpressionLF,
    KeywordLF,
    RegexLF,
    expression_lf,
    keyword_lf,
    regex_lf,
)
from labeling_functions.core import (
    ABSTAIN,
    Against,
    LabelingFunction,
    LabelSpec,
    Row,
    RowLF,
    VectorizedLF,
    label_targets,
    labeling_function,
)
from labeling_functions.embedding_lfs import (
    NearestNeighborLF,
    PrototypeLF,
    nearest_neighbor_lf,
    prototype_lf,
)
from labeling_functions.errors import LabelingFunctionError, LFDefinitionError
from labeling_functions.spacy_lfs import (
    SpacyEntityLF,
    SpacyLF,
    SpacyMatcherLF,
    spacy_entity_lf,
    spacy_matcher_lf,
)

__all__ = [
    "ABSTAIN",
    "Against",
    "ExpressionLF",
    "KeywordLF",
    "LFDefinitionError",
    "LabelSpec",
    "LabelingFunction",
    "LabelingFunctionError",
    "NearestNeighborLF",
    "PrototypeLF",
    "RegexLF",
    "Row",
    "RowLF",
    "SpacyEntityLF",
    "SpacyLF",
    "SpacyMatcherLF",
    "VectorizedLF",
    "expression_lf",
    "keyword_lf",
    "label_targets",
    "labeling_function",
    "nearest_neighbor_lf",
    "prototype_lf",
    "regex_lf",
    "spacy_entity_lf",
    "spacy_matcher_lf",
]
