"""Quality analysis: :mod:`~enrich.analysis.summary` (LF summary),
:mod:`~enrich.analysis.gold` (benchmark against gold), :mod:`~enrich.analysis.slices`,
:mod:`~enrich.analysis.agreement` (annotation matrices, agreement statistics) and
:mod:`~enrich.analysis.consensus` (annotator consensus)."""
