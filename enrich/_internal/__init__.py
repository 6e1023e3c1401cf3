"""Private helpers of :mod:`enrich`: nothing here is public API and any of it may change.

Modules: ``frames`` (data in), ``classes`` (class names), ``vote_arrays`` (vote and gold
validation, pattern compression), ``files`` (atomic writes), ``display`` (tables in
notebooks and terminals), ``estimator`` (scikit-learn conventions without importing it),
``random`` (one ``random_state`` policy), ``progress`` (one progress-bar policy) and
``deprecation`` (old module paths).
"""
