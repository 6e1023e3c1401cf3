"""Label models and their output: :mod:`~enrich.models.label_model`,
:mod:`~enrich.models.majority_vote`, :mod:`~enrich.models.snorkel` (Snorkel's LabelModel as a
peer), the shared :mod:`~enrich.models.base`, and :mod:`~enrich.models.output` (label and
enriched tables)."""
