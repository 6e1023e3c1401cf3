"""Data in and out: :mod:`~enrich.io.store` (the Delta table and runs), :mod:`~enrich.io.lineage`
(runs, history, diff), :mod:`~enrich.io.label_studio` (review round trip),
:mod:`~enrich.io.report` and :mod:`~enrich.io.charts` (run reports)."""
