"""Quality analysis of LFs, labels and annotators.

:mod:`~enrich.analysis.summary` (the LF summary), :mod:`~enrich.analysis.gold` (benchmark
against gold), :mod:`~enrich.analysis.slices` (per-slice quality) and
:mod:`~enrich.analysis.consensus` (annotation matrices, agreement, annotator consensus).
"""
