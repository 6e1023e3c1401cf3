"""Growing and correcting a dataset: :mod:`~enrich.curation.gaps` (weak classes and slices),
:mod:`~enrich.curation.gap_filling` (similar unlabeled assets) and
:mod:`~enrich.curation.review` (the expert review queue)."""
