"""Applying LFs: :mod:`~enrich.labeling.apply` (the vote matrix of a frame) and
:mod:`~enrich.labeling.engines` (local and Dask execution, LF sources of a job)."""
