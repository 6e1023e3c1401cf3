"""Run reports: a JSON summary for machines and a self-contained HTML page for people.

Both are made from the run record alone (the one committed with the table version), so a
report can be written again for any past run. The HTML page has no external references:
plots are inline SVG (:mod:`enrich.charts`). It shows the class balance, LF coverage and
accuracy, the confidence histogram, slice metrics with confidence intervals and drift
against the previous run.

>>> record = {"run_id": "r1", "classes": ["HAM", "SPAM"], "counts": {"n_assets": 2},
...           "metrics": {"class_counts": {"HAM": 1, "SPAM": 1}, "lfs": []}}
>>> page = render_html(record, None)
>>> page.startswith("<!DOCTYPE html>") and "r1" in page
True
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from enrich._internal.uri import Location
from enrich.io import charts

__all__ = [
    "ACCURACY_CHECK_CONFIDENCE",
    "DRIFT_LEVELS",
    "accuracy_disagreement",
    "drift_rows",
    "render_html",
    "summary_dict",
    "write_reports",
]

#: Alert levels of the drift figures: (figure, watch from, alert from, what it measures).
#: A figure below "watch" is "stable". The PSI bands are the usual rule of thumb for a
#: population stability index (under 0.1 no real shift, 0.1-0.25 a moderate one, above
#: 0.25 a major one); the others are absolute changes of a share or a mean.
DRIFT_LEVELS: dict[str, tuple[float, float, str]] = {
    "confidence_psi": (
        0.1,
        0.25,
        "population stability index between this run's and the previous run's histograms "
        "of label confidence, over assets with a label (0 = same shape); it overstates a "
        "small move of many equal confidences across a bin edge (see the shift below)",
    ),
    "confidence_shift": (
        0.02,
        0.05,
        "how far label confidence moved on average between the two histograms (earth "
        "mover's distance, over assets with a label); robust where confidences sit on a few "
        "values",
    ),
    "mean_confidence_change": (
        0.02,
        0.05,
        "change of the mean label confidence, over assets with a label",
    ),
    "class_balance_change": (
        0.02,
        0.05,
        "largest change of a class's share of the labeled assets",
    ),
    "all_abstain_share_change": (
        0.02,
        0.05,
        "change of the share of assets no LF voted on (no label; left out of the figures above)",
    ),
    "coverage_change": (
        0.02,
        0.05,
        "largest change of an LF's coverage (share of assets it votes on)",
    ),
    "flipped_share": (
        0.01,
        0.05,
        "share of the assets in both runs whose label changed",
    ),
}

#: Confidence of the interval around an LF's accuracy measured on gold, outside which the
#: label model's estimate of that accuracy is flagged.
ACCURACY_CHECK_CONFIDENCE = 0.95
#: An estimate this close to the measured accuracy is never flagged, however much gold.
_ACCURACY_TOLERANCE = 0.05

logger = logging.getLogger(__name__)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1f2933;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d9e2ec}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #d9e2ec;padding:.25rem .6rem;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e5;border-left:4px solid #f0b429;padding:.5rem 1rem}
.bad{color:#9b1c1c;font-weight:600}.muted{color:#7b8794}
img{max-width:100%;height:auto;border:1px solid #e4e7eb;margin:.5rem 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
"""


def summary_dict(
    record: Mapping[str, Any],
    *,
    table_path: str | os.PathLike[str],
    table_version: int,
    report_path: str | os.PathLike[str] | None = None,
    review_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The JSON run summary: status, where the output is, and the whole run record.

    >>> summary_dict({"run_id": "r1"}, table_path="t", table_version=3)["table"]
    {'path': 't', 'version': 3}
    """
    return {
        "status": "succeeded",
        "run_id": record.get("run_id"),
        "table": {"path": str(table_path), "version": table_version},
        "report": str(report_path) if report_path else None,
        "review_queue": str(review_path) if review_path else None,
        **{k: v for k, v in record.items() if k != "run_id"},
    }


def write_reports(
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    reports_dir: str | os.PathLike[str] | Location,
    *,
    table_path: str | os.PathLike[str],
    table_version: int,
    review_path: str | os.PathLike[str] | None = None,
    latest: bool = True,
) -> tuple[Path | Location, Path | Location]:
    """Write ``<run_id>.json`` and ``<run_id>.html`` atomically; return their paths.

    With ``latest``, ``latest.*`` copies are written too. ``reports_dir`` may be an
    object-store URI (a :class:`~enrich._internal.uri.Location` carries its options): each
    file is then uploaded whole, and the paths returned are locations.
    """
    where = Location.of(reports_dir)
    where.mkdir()
    folder: Any = where if where.is_remote else where.path
    run_id = str(record.get("run_id"))
    report_path = folder / f"{run_id}.html"
    summary_path = folder / f"{run_id}.json"
    summary = summary_dict(
        record,
        table_path=table_path,
        table_version=table_version,
        report_path=report_path,
        review_path=review_path,
    )
    summary_text = json.dumps(summary, indent=2, default=_default) + "\n"
    page = render_html(record, previous, table_version=table_version)
    _write_text(summary_path, summary_text)
    _write_text(report_path, page)
    if latest:  # written from the same text: the same bytes as the run's own files
        _write_text(folder / "latest.json", summary_text)
        _write_text(folder / "latest.html", page)
    return summary_path, report_path


def _write_text(path: Path | Location, text: str) -> None:
    Location.of(path).write_file(lambda partial: partial.write_text(text, encoding="utf-8"))


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# -- the HTML page -------------------------------------------------------------------------
def render_html(
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    table_version: int | None = None,
) -> str:
    """The HTML report of one run (``previous``: the run before it, for drift)."""
    metrics: Mapping[str, Any] = record.get("metrics", {})
    before: Mapping[str, Any] = (previous or {}).get("metrics", {})
    classes: list[str] = list(record.get("classes", []))
    if record.get("tasks"):  # a multi-label job, or several tasks
        return _tasks_html(record, previous, table_version=table_version)
    parts = _head(record, table_version)
    parts.extend(_class_sections(record, metrics, before, classes))
    parts.extend(_timings(record))
    parts.append("</body></html>")
    return "\n".join(parts)


def _timings(record: Mapping[str, Any]) -> list[str]:
    timings = record.get("timings", {})
    if not timings:
        return []
    rows = [[k, f"{v:.2f} s"] for k, v in timings.items()]
    rows.append(["peak memory", f"{_fmt(record.get('peak_rss_mb'))} MB"])
    return ["<h2>Timings</h2>", _table(rows, ["phase", "time"])]


def _tasks_html(
    record: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    table_version: int | None = None,
) -> str:
    """The report of a multi-label job or a job of several tasks: a section per task.

    A multi-class task gets the single-label sections; a multi-label task its per-label
    section (:func:`_label_sections`).
    """
    parts = _head(record, table_version)
    before_tasks: Mapping[str, Any] = (previous or {}).get("tasks") or {}
    for name, task in record.get("tasks", {}).items():
        kind = task.get("kind")
        metrics = task.get("metrics") or {}
        before = (before_tasks.get(name) or {}).get("metrics") or {}
        prefix = task.get("prefix") or ""
        where = f"; its columns start with {prefix}" if prefix else ""
        title = f"Task {name} ({kind})" if prefix else f"The {kind} task"
        parts.append(f"<h2 class='task'>{_e(title)}</h2>")
        parts.append(
            "<p class='muted'>"
            + _e(f"{kind} task, {'classes' if kind == 'multiclass' else 'labels'} ")
            + _e(", ".join(task.get("names", [])))
            + _e(f"; model {(task.get('model') or {}).get('version', '?')}{where}")
            + "</p>"
        )
        if kind == "multiclass":
            own = {**record, "end_model": task.get("end_model")}  # the task's retrain line
            parts.extend(_class_sections(own, metrics, before, list(task.get("names", []))))
        else:
            parts.extend(_label_sections(metrics, before))
            if metrics.get("end_model"):
                parts.extend(_label_end_model_section(metrics["end_model"]))
    parts.extend(_timings(record))
    parts.append("</body></html>")
    return "\n".join(parts)


def _label_sections(metrics: Mapping[str, Any], before: Mapping[str, Any]) -> list[str]:
    """The per-label section of a multi-label task: coverage, positives, gold F1, LFs."""
    gold = metrics.get("gold") or {}
    by_gold = {r.get("label"): r for r in gold.get("per_label", [])}
    shares = {r.get("label"): r.get("positive_share") for r in before.get("per_label", [])}
    rows = []
    for r in metrics.get("per_label", []):
        label = r.get("label")
        scored = by_gold.get(label, {})
        was = shares.get(label)
        change = r.get("positive_share", 0) - was if was is not None else None
        rows.append(
            [
                label,
                _pct(r.get("coverage")),
                _fmt(r.get("n_voted_for")),
                _fmt(r.get("n_voted_against")),
                _fmt(r.get("n_positive")),
                _pct(r.get("positive_share")),
                _signed(change, pct=True) if change is not None else "",
                _fmt(r.get("threshold")),
                *(
                    [
                        _pct(scored.get("precision")),
                        _pct(scored.get("recall")),
                        _pct(scored.get("f1")),
                        _fmt(scored.get("support")),
                    ]
                    if gold
                    else []
                ),
            ]
        )
    header = [
        "label",
        "coverage",
        "voted for",
        "voted against",
        "positives",
        "share",
        "share change",
        "threshold",
    ]
    header += ["precision", "recall", "F1", "gold positives"] if gold else []
    parts = ["<h3>Per-label quality</h3>", _table(rows, header)]
    parts.append(
        "<p>"
        + _e(
            f"coverage {_pct(metrics.get('coverage'))} (some LF voted on some label), "
            f"{_fmt(metrics.get('mean_labels'))} labels per asset on average, conflict "
            f"{_pct(metrics.get('conflict'))}; {_fmt(metrics.get('n_needs_review'))} need review"
        )
        + "</p>"
    )
    if gold:
        parts.append(
            "<p>"
            + _e(
                f"{_fmt(gold.get('n_assets'))} assets with gold: micro F1 "
                f"{_pct(gold.get('micro_f1'))}, macro F1 {_pct(gold.get('macro_f1'))}, subset "
                f"accuracy {_pct(gold.get('subset_accuracy'))}"
            )
            + "</p>"
        )
    else:
        parts.append("<p class='muted'>No gold labels: the per-label F1 needs a gold column.</p>")
    gaps = metrics.get("gaps") or {}
    if gaps.get("enabled"):
        parts.append("<h3>Gaps per label</h3>")
        found = [
            [g.get("label"), g.get("gap"), g.get("metric"), _fmt(g.get("deficit")), g.get("reason")]
            for g in gaps.get("gaps", [])
        ]
        parts.append(
            _table(found, ["label", "gap", "metric", "deficit", "reason"])
            if found
            else "<p>No label falls short of the [gaps] targets.</p>"
        )
        if gaps.get("candidates_note"):
            parts.append(f"<p class='muted'>{_e(gaps['candidates_note'])}</p>")
        picks = [
            [c.get("label"), str(c.get("asset_id")), c.get("gap"), _fmt(c.get("score"))]
            for c in gaps.get("candidates") or []
        ]
        if picks:
            parts.append(f"<p>{len(picks)} similar unsure assets proposed for the gaps:</p>")
            parts.append(_table(picks, ["label", "asset_id", "gap", "score"]))
    lfs = metrics.get("lfs", [])
    keys = [
        k for k in ("coverage", "for", "against", "conflicts", "accuracy") if lfs and k in lfs[0]
    ]
    parts.append("<h3>Labeling functions per label</h3>")
    parts.append(
        _table(
            [[r.get("label"), r.get("lf"), *[_pct(r.get(k)) for k in keys]] for r in lfs],
            ["label", "LF", *keys],
        )
    )
    for error in metrics.get("lf_errors", []):
        parts.append(
            f"<p class='warn'>LF {_e(error.get('lf'))}: {_e(error.get('n_errors'))} error(s) "
            f"recorded as abstains; first: {_e(error.get('first_error'))}</p>"
        )
    return parts


def _label_end_model_section(end: Mapping[str, Any]) -> list[str]:
    """A multi-label task's ``[end_model]``: per label, trained or not, positives, F1."""
    gold = end.get("gold") or {}
    note = (
        f"End model (one classifier per label) trained on {_fmt(end.get('n_train'))} assets; "
        f"it alone labels {_fmt(end.get('n_labeled_by_model'))} assets no LF voted on."
    )
    parts = ["<h3>End model per label</h3>", f"<p>{_e(note)}</p>"]
    retrain = end.get("retrain") or {}
    if retrain.get("reason"):
        done = "Retrained" if retrain.get("retrained") else "Kept the stored model"
        parts.append(f"<p>{_e(done + ': ' + str(retrain['reason']) + '.')}</p>")
    rows = [
        [
            r.get("label"),
            "yes" if r.get("trained") else "no (one value only)",
            _fmt(r.get("n_positive")),
            _pct(r.get("positive_share")),
            _pct(r.get("agreement_with_label_model")),
            *([_pct(r.get("gold_f1"))] if gold else []),
        ]
        for r in end.get("per_label", [])
    ]
    header = ["label", "classifier", "positives", "share", "agrees with the LFs"]
    parts.append(_table(rows, header + (["F1 (gold)"] if gold else [])))
    if gold:
        parts.append(
            "<p>"
            + _e(
                f"Against gold ({_fmt(gold.get('n_assets'))} assets, out-of-fold where trained "
                f"on): micro F1 {_pct(gold.get('micro_f1'))}, macro F1 "
                f"{_pct(gold.get('macro_f1'))}, subset accuracy "
                f"{_pct(gold.get('subset_accuracy'))}"
            )
            + "</p>"
        )
    return parts


def _head(record: Mapping[str, Any], table_version: int | None) -> list[str]:
    """The page's head: title, run line, warnings and the asset counts."""
    counts: Mapping[str, Any] = record.get("counts", {})
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>enrich run {_e(record.get('run_id'))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>enrich run {_e(record.get('run_id'))}</h1>",
        "<p class='muted'>"
        + _e(
            f"started {record.get('started_at', '?')}, took {record.get('duration_s', '?')} s; "
            f"engine {record.get('engine', '?')}; table version {table_version}; "
            f"config {record.get('config_hash', '?')}; "
            f"model {record.get('model', {}).get('version', '?')}"
        )
        + "</p>",
    ]
    for warning in record.get("warnings", []):
        parts.append(f"<p class='warn'>{_e(warning)}</p>")
    parts.append("<h2>Assets</h2>")
    parts.append(_table([[_label(k), _fmt(v)] for k, v in counts.items()], ["", "count"]))
    return parts


def _class_sections(
    record: Mapping[str, Any],
    metrics: Mapping[str, Any],
    before: Mapping[str, Any],
    classes: list[str],
) -> list[str]:
    """The sections of one multi-class task: balance, LFs, confidence, gold, slices, drift."""
    parts: list[str] = []
    figures = _figures(metrics, before, classes)

    parts.append("<h2>Class balance</h2>")
    parts.append(figures.get("balance", ""))
    rows = [
        [
            c,
            _fmt(metrics.get("class_counts", {}).get(c)),
            _pct(metrics.get("class_balance", {}).get(c)),
        ]
        for c in classes
    ]
    parts.append(_table(rows, ["class", "assets", "share of labeled"]))
    parts.append(
        "<p>"
        + _e(
            f"mean confidence {_fmt(metrics.get('mean_confidence'))} (labeled assets); "
            f"{_fmt(metrics.get('n_needs_review'))} need review; "
            f"coverage {_pct(metrics.get('coverage'))}, conflict {_pct(metrics.get('conflict'))}"
        )
        + "</p>"
    )
    parts.append(_no_votes_note(metrics))

    parts.append("<h2>Labeling functions</h2>")
    parts.append(figures.get("lfs", ""))
    lfs: Sequence[Mapping[str, Any]] = metrics.get("lfs", [])
    lf_keys = [
        k
        for k in ("coverage", "overlaps", "conflicts", "empirical_accuracy", "estimated_accuracy")
        if any(k in row for row in lfs)
    ]
    versions = record.get("lf_versions", {})
    rerun = set(record.get("lfs_rerun", []))
    checks = {row["lf"]: accuracy_disagreement(row) for row in lfs}
    checked = any(check is not None for check in checks.values())
    rows = [
        [
            _e(row["lf"]),
            *[_e(_pct(row.get(k))) for k in lf_keys],
            *([_accuracy_cell(checks[row["lf"]])] if checked else []),
            _e(versions.get(row["lf"], "")),
            "yes" if row["lf"] in rerun else "",
        ]
        for row in lfs
    ]
    header = ["LF", *[_label(k) for k in lf_keys]]
    header += ["estimate vs gold"] if checked else []
    parts.append(_table(rows, [*header, "version", "re-run"], raw_all=True))
    flagged = [(lf, c) for lf, c in checks.items() if c is not None and c["flag"]]
    if flagged:
        listed = "; ".join(
            f"{lf}: estimated {c['estimated']:.2f}, measured {c['measured']:.2f} on "
            f"{c['n_gold']:,} gold (interval {c['low']:.2f}-{c['high']:.2f})"
            for lf, c in flagged
        )
        parts.append(
            "<p class='warn'>"
            + _e(
                f"The label model's estimate of {len(flagged)} LF accuracy(ies) disagrees with "
                f"the accuracy measured on gold: {listed}. The label model weighs these LFs "
                "by the estimate, so their votes count too much or too little; check the "
                "LFs' dependencies (LFs that copy each other look more accurate), add gold, "
                "or fit with the gold labels (gold.use_in_fit)."
            )
            + "</p>"
        )
    for error in metrics.get("lf_errors", []):
        parts.append(
            f"<p class='warn'>LF {_e(error.get('lf'))}: {_e(error.get('n_errors'))} error(s) "
            f"recorded as abstains; first: {_e(error.get('first_error'))}</p>"
        )

    parts.append("<h2>Confidence</h2>")
    parts.append(figures.get("confidence", ""))
    if metrics.get("confidence_scope") == "labeled":
        parts.append(
            "<p class='muted'>Over the assets with a label; assets no LF voted on have no "
            "confidence (see Class balance).</p>"
        )

    gold = metrics.get("gold")
    if gold:
        parts.append("<h2>Gold labels</h2>")
        parts.append(
            "<p>"
            + _e(
                f"{gold.get('n_gold')} gold assets: accuracy {_pct(gold.get('accuracy'))}, "
                f"macro F1 {_pct(gold.get('macro_f1'))}, ECE {_fmt(gold.get('ece'))}"
            )
            + "</p>"
        )
        rows = [
            [
                r.get("class"),
                _pct(r.get("precision")),
                _pct(r.get("recall")),
                _pct(r.get("f1")),
                _fmt(r.get("support")),
            ]
            for r in gold.get("per_class", [])
        ]
        parts.append(_table(rows, ["class", "precision", "recall", "F1", "support"]))

    slices = metrics.get("slices")
    if slices:
        parts.append(f"<h2>Slices ({_e(slices.get('metric'))})</h2>")
        parts.append(figures.get("slices", ""))
        rows = [
            [
                r["slice"],
                _fmt(r.get("n_assets")),
                _fmt(r.get("metric")),
                f"{_fmt(r.get('ci_low'))} - {_fmt(r.get('ci_high'))}",
                _status(r.get("status")),
            ]
            for r in slices.get("table", [])
        ]
        parts.append(_table(rows, ["slice", "assets", "metric", "interval", "status"], raw=True))

    gaps = metrics.get("gaps") or {}
    if gaps.get("enabled"):
        parts.append("<h2>Gaps</h2>")
        weak = [[g["gap"], g["kind"], g["reason"]] for g in gaps.get("gaps", [])]
        if weak:
            parts.append(_table(weak, ["gap", "kind", "why"]))
        else:
            parts.append("<p>No class or slice is short of confident or right labels.</p>")
        note = gaps.get("candidates_note")
        if gaps.get("n_candidates") is not None:
            searched = gaps.get("n_searched")
            scope = f" (searched {searched:,} unsure assets)" if searched else ""
            parts.append(
                "<p>"
                + _e(
                    f"{gaps['n_candidates']} similar assets proposed for review{scope}"
                    + (f": {note}" if note else "")
                    + "."
                )
                + "</p>"
            )
        elif note:
            parts.append(f"<p>{_e(f'No similar assets proposed for review: {note}.')}</p>")

    end_model = metrics.get("end_model")
    if end_model:
        parts.extend(_end_model_section(end_model, (record.get("end_model") or {}).get("retrain")))

    review = metrics.get("review")
    if review:
        parts.append("<h2>Review queue</h2>")
        parts.append(
            f"<p>{_e(review.get('n_queued'))} assets queued of {_e(review.get('n_eligible'))} "
            "eligible.</p>"
        )
        reasons = review.get("reason_counts", {})
        parts.append(_table([[k, _fmt(v)] for k, v in reasons.items()], ["reason", "assets"]))

    drift = metrics.get("drift")
    parts.append("<h2>Drift against the previous run</h2>")
    if drift:
        parts.append(figures.get("drift", ""))
        parts.append(
            "<p>"
            + _e(
                f"previous run {drift.get('previous_run_id')}: assets "
                f"{_fmt(drift.get('n_assets_before'))} -> {_fmt(metrics.get('n_assets'))}; "
                f"{_fmt(drift.get('n_labels_flipped'))} label(s) flipped."
            )
            + "</p>"
        )
        if drift.get("note"):
            parts.append(f"<p class='muted'>{_e(drift['note'])}</p>")
        rows = [
            [_e(r["figure"]), _e(r["value"]), _level(r["level"]), _e(r["meaning"])]
            for r in drift_rows(drift, metrics)
        ]
        parts.append(_table(rows, ["figure", "value", "level", "what it measures"], raw_all=True))
        parts.append(
            "<p class='muted'>"
            + _e(
                "Levels: stable below the first threshold, watch from it, alert from the "
                "second ("
                + "; ".join(f"{_label(k)} {w:g} / {a:g}" for k, (w, a, _) in DRIFT_LEVELS.items())
                + "). Assets no LF voted on sit at the class prior, which moves with every "
                "refit: they are left out of the balance and confidence figures and counted "
                "on their own line."
            )
            + "</p>"
        )
        balance = drift.get("class_balance_change") or {}
        if balance:
            rows = [[c, _signed(v, pct=True)] for c, v in balance.items()]
            parts.append(_table(rows, ["class", "share change (labeled assets)"]))
    else:
        parts.append("<p>This is the first run of the table.</p>")
    return parts


def _end_model_section(end: Mapping[str, Any], retrain: Mapping[str, Any] | None) -> list[str]:
    """``[end_model]``: coverage, whether it retrained, agreement with gold and the LFs."""
    suspects = end.get("n_gold_suspect")
    note = (
        f"End model trained on {_fmt(end.get('n_train'))} assets; it labels "
        f"{_fmt(end.get('n_labeled_by_model'))} assets no LF voted on"
        + (f"; {_fmt(suspects)} gold labels look wrong (gold_suspect)" if suspects else "")
        + "."
    )
    parts = ["<h2>End model</h2>", f"<p>{_e(note)}</p>"]
    if retrain and retrain.get("reason"):
        done = "Retrained" if retrain.get("retrained") else "Kept the stored model"
        parts.append(f"<p>{_e(done + ': ' + str(retrain['reason']) + '.')}</p>")
    for key, title in (("vs_gold", "against gold"), ("vs_label_model", "against the LFs")):
        scored = end.get(key)
        if not scored:
            continue
        parts.append(f"<h3>{_e(title.capitalize())}</h3>")
        overall = [
            [r.get("model"), _fmt(r.get("n")), _pct(r.get("accuracy")), _pct(r.get("macro_f1"))]
            for r in scored.get("overall", [])
        ]
        parts.append(_table(overall, ["model", "assets", "accuracy", "macro F1"]))
        per_class = [
            [r.get("model"), r.get("class"), _pct(r.get("precision")), _pct(r.get("recall"))]
            for r in scored.get("per_class", [])
        ]
        parts.append(_table(per_class, ["model", "class", "precision", "recall"]))
        slices = [
            [
                r.get("model"),
                r.get("slice"),
                _fmt(r.get("n")),
                _fmt(r.get("metric")),
                _status(r.get("status")),
            ]
            for r in scored.get("slices", [])
        ]
        if slices:
            parts.append(_table(slices, ["model", "slice", "assets", "metric", "status"], raw=True))
    return parts


def _e(value: Any) -> str:
    return html.escape(str(value))


def _no_votes_note(metrics: Mapping[str, Any]) -> str:
    n = metrics.get("n_all_abstain")
    if not n:
        return "<p>Every asset got at least one LF vote.</p>"
    share = metrics.get("all_abstain_share")
    text = (
        f"{n:,} asset(s){f' ({share:.1%})' if share is not None else ''} got no LF vote: "
        "they have no label and no confidence, and are left out of the class balance, the "
        "confidence figures and their drift (the label model would only give them the class "
        "prior). A label for them can come from review (imported as gold), a new LF that "
        "covers them, or an end model trained on the labeled assets."
    )
    return f"<p>{_e(text)}</p>"


def _level(level: str) -> str:
    text = _e(level)
    if level == "alert":
        return f"<span class='bad'>{text}</span>"
    return text if level != "watch" else f"<b>{text}</b>"


def drift_rows(drift: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """Each drift figure with its value, alert level and what it measures.

    Parameters
    ----------
    drift
        ``metrics["drift"]`` of a run record.
    metrics
        The run's metrics (for the number of assets).

    Returns
    -------
    list of dict
        ``figure``, ``value`` (text), ``level`` (``stable``, ``watch``, ``alert`` or ``-``
        when not compared) and ``meaning``; thresholds in :data:`DRIFT_LEVELS`.

    Examples
    --------
    >>> rows = drift_rows({"confidence_psi": 0.3, "mean_confidence_change": 0.01}, {})
    >>> for row in rows[:3]:
    ...     print(row["figure"], row["value"], row["level"])
    confidence PSI 0.3 alert
    confidence shift - -
    mean confidence change +0.0100 stable
    """

    def largest(values: Any) -> float | None:
        known = [v for v in (values or {}).values() if v is not None]
        return max(known, key=abs) if known else None

    n_before = drift.get("n_assets_before")
    flipped = drift.get("n_labels_flipped")
    both = min(n_before, metrics.get("n_assets") or 0) if n_before else 0
    figures = [
        ("confidence_psi", "confidence PSI", drift.get("confidence_psi"), _fmt),
        ("confidence_shift", "confidence shift", drift.get("confidence_shift"), _fmt),
        (
            "mean_confidence_change",
            "mean confidence change",
            drift.get("mean_confidence_change"),
            _signed,
        ),
        (
            "class_balance_change",
            "class balance change (largest)",
            largest(drift.get("class_balance_change")),
            lambda v: _signed(v, pct=True),
        ),
        (
            "all_abstain_share_change",
            "share with no LF vote, change",
            drift.get("all_abstain_share_change"),
            lambda v: _signed(v, pct=True),
        ),
        (
            "coverage_change",
            "LF coverage change (largest)",
            largest(drift.get("coverage_change")),
            lambda v: _signed(v, pct=True),
        ),
        (
            "flipped_share",
            "labels flipped",
            flipped / both if flipped is not None and both else None,
            _pct,
        ),
    ]
    rows = []
    for key, name, value, show in figures:
        watch, alert, meaning = DRIFT_LEVELS[key]
        if value is None:
            level = "-"
        else:
            size = abs(value)
            level = "alert" if size >= alert else "watch" if size >= watch else "stable"
        rows.append({"figure": name, "value": show(value), "level": level, "meaning": meaning})
    return rows


def accuracy_disagreement(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Whether the label model's accuracy estimate of an LF disagrees with gold.

    Parameters
    ----------
    row
        One LF's row of the run's LF metrics: ``estimated_accuracy``, and ``correct`` and
        ``incorrect`` (its votes on gold assets). The flag of
        :func:`enrich.analysis.summary.lf_summary` (``accuracy_mismatch``), when the row
        has it, decides ``flag``: one definition for the summary and the report.

    Returns
    -------
    dict or None
        None when there is no estimate or no judged vote; else ``estimated``,
        ``measured``, ``n_gold``, ``low``, ``high`` (a Wilson interval at
        :data:`ACCURACY_CHECK_CONFIDENCE` around the measured accuracy) and ``flag``: the
        estimate lies outside the interval (and, for rows without ``accuracy_mismatch``,
        more than 0.05 from the measured value).

    Examples
    --------
    >>> check = accuracy_disagreement({"estimated_accuracy": 0.99, "correct": 73,
    ...                                "incorrect": 27})
    >>> check["flag"], round(check["low"], 2), round(check["high"], 2)
    (True, 0.64, 0.81)
    >>> accuracy_disagreement({"estimated_accuracy": 0.75, "correct": 73, "incorrect": 27})["flag"]
    False
    """
    from statistics import NormalDist

    estimate = row.get("estimated_accuracy")
    right, wrong = row.get("correct"), row.get("incorrect")
    if estimate is None or right is None or wrong is None or right + wrong == 0:
        return None
    n = right + wrong
    measured = right / n
    z = NormalDist().inv_cdf(0.5 + ACCURACY_CHECK_CONFIDENCE / 2)
    centre = (measured + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((measured * (1 - measured) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    flag = not low <= estimate <= high and abs(estimate - measured) > _ACCURACY_TOLERANCE
    if row.get("accuracy_mismatch") is not None:
        flag = bool(row["accuracy_mismatch"])
    return {
        "estimated": float(estimate),
        "measured": measured,
        "n_gold": int(n),
        "low": low,
        "high": high,
        "flag": flag,
    }


def _accuracy_cell(check: Mapping[str, Any] | None) -> str:
    if check is None:
        return "-"
    if not check["flag"]:
        return "agrees"
    return (
        f"<span class='bad'>disagrees: {check['estimated']:.2f} vs {check['measured']:.2f} "
        f"({check['low']:.2f}-{check['high']:.2f}, {check['n_gold']:,} gold)</span>"
    )


def _label(key: str) -> str:
    return key.replace("_", " ")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def _signed(value: Any, *, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if pct else f"{value:+.4f}"


def _status(status: Any) -> str:
    text = _e(status)
    return f"<span class='bad'>{text}</span>" if status == "under-performing" else text


def _table(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str],
    *,
    raw: bool = False,
    raw_all: bool = False,
) -> str:
    """Return an HTML table.

    Cells are escaped, except the last with ``raw`` and all with ``raw_all`` (the caller escaped
    them).
    """
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = str(cell) if raw_all or (raw and i == len(row) - 1) else _e(cell)
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# -- plots -------------------------------------------------------------------------------
def _figures(
    metrics: Mapping[str, Any], before: Mapping[str, Any], classes: Sequence[str]
) -> dict[str, str]:
    """The report's plots as inline SVG (:mod:`enrich.charts`), by section."""
    out: dict[str, str] = {}
    if classes:
        now = [metrics.get("class_balance", {}).get(c, 0.0) for c in classes]
        series = [charts.Series("this run", now)]
        if before.get("class_balance"):
            old = [before["class_balance"].get(c, 0.0) for c in classes]
            series.insert(0, charts.Series("previous run", old, charts.GREY_BLUE))
        out["balance"] = charts.vertical_bars(
            classes, series, title="Class balance", ylabel="share of labeled assets"
        )
    lfs = metrics.get("lfs", [])
    if lfs:
        names = [row["lf"] for row in lfs]
        key = (
            "empirical_accuracy"
            if any(r.get("empirical_accuracy") is not None for r in lfs)
            else "estimated_accuracy"
        )
        values = [row.get(key) for row in lfs]
        out["lfs"] = charts.horizontal_bars(
            names,
            [row.get("coverage") or 0 for row in lfs],
            title="LF coverage",
            xlabel="coverage",
        ) + charts.horizontal_bars(
            names,
            [v if v is not None else 0 for v in values],
            title="LF accuracy" if any(v is not None for v in values) else "LF accuracy (no gold)",
            xlabel=_label(key),
            colors=charts.GREEN,
            xmax=1.0,
            reference=0.5,
        )
    hist = metrics.get("confidence_hist")
    if hist and hist.get("counts"):
        total = sum(hist["counts"]) or 1
        series = [charts.Series("this run", [c / total for c in hist["counts"]])]
        old = (before.get("confidence_hist") or {}).get("counts")
        if old:
            old_total = sum(old) or 1
            series.append(charts.Series("previous run", [c / old_total for c in old], charts.RED))
        out["confidence"] = charts.steps(
            hist["edges"],
            series,
            title="Confidence",
            xlabel="confidence (top-class probability)",
            ylabel="share of labeled assets",
        )
    slices = metrics.get("slices")
    rows = [r for r in (slices or {}).get("table") or [] if r.get("metric") is not None]
    if rows:
        metric = [r["metric"] for r in rows]
        out["slices"] = charts.intervals(
            [r["slice"] for r in rows],
            metric,
            [r["ci_low"] if r.get("ci_low") is not None else r["metric"] for r in rows],
            [r["ci_high"] if r.get("ci_high") is not None else r["metric"] for r in rows],
            title="Slices (red: under-performing)",
            xlabel=str(slices.get("metric")),
            colors=[
                charts.RED if r.get("status") == "under-performing" else charts.BLUE for r in rows
            ],
            reference=(slices.get("overall") or {}).get("metric"),
        )
    drift = metrics.get("drift")
    changes = {
        k: v for k, v in ((drift or {}).get("coverage_change") or {}).items() if v is not None
    }
    if changes:
        out["drift"] = charts.horizontal_bars(
            list(changes),
            list(changes.values()),
            title="LF coverage drift",
            xlabel="coverage change since the previous run",
            colors=[charts.GREEN if v >= 0 else charts.RED for v in changes.values()],
        )
    return out
