"""The demo job: the whole loop on the bundled YouTube spam data, in one call.

Loads the bundled comments, applies the YouTube spam LF pack, fits the label model on the
votes (gold labels are used only to score the result), and writes the enriched table plus a
run record to an output folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from enrich._internal.files import write_atomic
from enrich.analysis.summary import LFSummary, lf_summary
from enrich.datasets import YOUTUBE_SPAM_CLASSES, load_youtube_spam
from enrich.labeling.apply import apply
from enrich.models.label_model import LabelModel
from enrich.models.majority_vote import MajorityVote
from enrich.models.output import enriched_table, new_run_id

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: where it wrote, the LF summary and headline figures."""

    output_dir: Path
    enriched_path: Path
    run_path: Path
    model_path: Path
    summary: LFSummary
    enriched: pl.DataFrame
    gold_accuracy: float
    majority_vote_accuracy: float


def run_demo(
    output_dir: str | Path, *, n_jobs: int = 1, progress: bool | None = None, random_state: int = 0
) -> DemoResult:
    """Run the demo job; write ``enriched.parquet``, ``label_model.json`` and ``run.json``.

    ``gold_accuracy`` compares the labels with the dataset's gold labels, which the job
    never sees while labeling; ``majority_vote_accuracy`` is the same score for a plain
    majority vote, for comparison.
    """
    from labeling_functions.packs import youtube_spam

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)  # fail before the work, not after it
    created_at = dt.datetime.now(dt.UTC)
    run_id = new_run_id(created_at)
    data = load_youtube_spam()
    votes = apply(
        youtube_spam.LFS, data, classes=YOUTUBE_SPAM_CLASSES, n_jobs=n_jobs, progress=progress
    )
    model = LabelModel(cardinality=len(YOUTUBE_SPAM_CLASSES), random_state=random_state).fit(votes)
    proba = model.predict_proba(votes)
    model_path = output_dir / "label_model.json"
    model.save(model_path)
    model_version = hashlib.sha256(model_path.read_bytes()).hexdigest()[:16]
    enriched = enriched_table(
        votes, proba, run_id=run_id, model_version=model_version, created_at=created_at
    )
    gold = data.get_column("label").to_numpy()
    summary = lf_summary(votes, gold, model=model)
    enriched_path = write_atomic(output_dir / "enriched.parquet", enriched.write_parquet)
    # the model's predictions, as for majority vote: on assets no LF voted on both guess
    # from the class balance (the enriched table leaves their label null)
    accuracy = float((model.predict(votes) == gold).mean())
    majority = MajorityVote(cardinality=len(YOUTUBE_SPAM_CLASSES)).fit(votes)
    mv_accuracy = float((majority.predict(votes) == gold).mean())
    record = {
        "run_id": run_id,
        "created_at": created_at.isoformat(),
        "dataset": "UCI YouTube Spam Collection (bundled, CC BY 4.0)",
        "n_assets": len(votes),
        "lfs": dict(zip(votes.lf_names, votes.lf_versions, strict=True)),
        "label_counts": {
            ("(no LF vote)" if name is None else name): count
            for name, count in enriched.get_column("label_name").value_counts(sort=True).rows()
        },
        "needs_review": int(enriched.get_column("needs_review").sum()),
        "gold_accuracy": accuracy,
        "majority_vote_accuracy": mv_accuracy,
        "model_version": model_version,
        "model_file": model_path.name,
    }
    run_path = output_dir / "run.json"
    text = json.dumps(record, indent=2, default=int) + "\n"
    write_atomic(run_path, lambda partial: partial.write_text(text, encoding="utf-8"))
    return DemoResult(
        output_dir=output_dir,
        enriched_path=enriched_path,
        run_path=run_path,
        model_path=model_path,
        summary=summary,
        enriched=enriched,
        gold_accuracy=accuracy,
        majority_vote_accuracy=mv_accuracy,
    )
