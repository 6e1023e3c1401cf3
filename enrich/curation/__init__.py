"""Growing and correcting a dataset.

:mod:`~enrich.curation.gaps` finds weak classes and slices, :mod:`~enrich.curation.gap_filling`
proposes similar unlabeled assets for them, :mod:`~enrich.curation.review` queues doubtful
items for expert review.
"""
