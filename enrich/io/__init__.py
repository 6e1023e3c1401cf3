"""Data in and out of the nightly job.

:mod:`~enrich.io.store` (the Delta table and the runs table), :mod:`~enrich.io.lineage` (runs,
history, diff), :mod:`~enrich.io.label_studio` (review round trip), :mod:`~enrich.io.report`
and :mod:`~enrich.io.charts` (JSON and HTML run reports).
"""
