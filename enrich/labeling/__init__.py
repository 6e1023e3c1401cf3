"""Applying LFs to data.

:mod:`~enrich.labeling.apply` builds the vote matrix of a frame, :mod:`~enrich.labeling.engines`
runs it locally or on Dask, and :mod:`~enrich.labeling.sources` loads a job's LFs.
"""
