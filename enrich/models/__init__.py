"""Label models and their output.

:mod:`~enrich.models.label_model`, :mod:`~enrich.models.majority_vote` and
:mod:`~enrich.models.snorkel` (Snorkel's LabelModel as a peer) share
:mod:`~enrich.models.base`; :mod:`~enrich.models.output` builds the label and enriched tables.
"""
