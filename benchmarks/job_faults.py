"""Fault injection for the nightly job: kills, corrupt state files, a full disk, hostile imports.

Each trial builds a small job (slices of the bundled YouTube spam data, a few LFs; with the
bundled MiniLM, a FAISS index and the embedding cache for the trials that damage them), runs
it once, adds new assets, injects one fault and runs ``enrich run`` again in a new process,
as a scheduler would. Then it undoes what a user is told to undo (frees the disk, fixes the
LF file, applies the recovery an error message names) and runs again, twice if needed.

A trial is

- **clean** when every run either succeeded or failed with one line that says what is wrong
  (and where), and the final table equals that of an uninterrupted run on the same data;
- **stuck** when the job still fails after the fault is gone (or its error names no file or
  reason to act on);
- **silent** when a run exits 0 but its output is wrong (or a run reports failure after it
  committed, or the final table differs from the uninterrupted run).

Run::

    .venv/bin/python -m benchmarks.job_faults            # every trial (about 10 minutes)
    .venv/bin/python -m benchmarks.job_faults --quick    # one trial of each kind

It prints one line per trial and the counts ``tried / clean / stuck / silent``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

LFS = """
from labeling_functions import ABSTAIN, keyword_lf, labeling_function, regex_lf

NEG = ["song", "love", "best"]

check_out = keyword_lf("check_out", ["check out", "my channel", "subscribe"], label="SPAM")
link = regex_lf("link", r"https?://|www\\.", label="SPAM", ignore_case=True)


def _mentions(text, words):
    return any(word in (text or "").lower() for word in words)


@labeling_function(label="HAM")
def song(x):
    return "HAM" if _mentions(x.text, NEG) else ABSTAIN
"""

JOB = """
[source]
path = "data/*.parquet"
text_column = "text"
slice_columns = ["video"]

[labeling_functions]
sources = ["lfs.py"]
classes = ["HAM", "SPAM"]

[embeddings]
enabled = {embeddings}

[gold]
column = "label"

[gaps]
min_slice_size = 10

[output]
path = "out/enriched"
lock_timeout = 5
"""

FIRST_ROWS = (0, 150)
NEW_ROWS = (150, 200)
COMPARED = ("asset_id", "label_name", "confidence", "needs_review")
PROBA_TOLERANCE = 0.005  # output.proba_tolerance of the job (its default)
RUN_TIMEOUT_S = 300


@dataclass
class Outcome:
    """What one ``enrich run`` did."""

    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.startswith("enrich: error:")]
        return lines[-1] if lines else ""

    @property
    def one_clear_line(self) -> bool:
        """A failure explained in one line, without a traceback."""
        return bool(self.error_line) and "Traceback" not in self.stderr


@dataclass
class Trial:
    """One fault: how to set it up, inject it, and undo it."""

    kind: str
    name: str
    inject: Callable[[Path], dict]
    undo: Callable[[Path, dict, Outcome], None] = lambda root, state, outcome: None
    embeddings: bool = False
    env: dict = field(default_factory=dict)
    add_rows: bool = True


# -- running the job -------------------------------------------------------------------------
def enrich_run(root: Path, *, env: dict | None = None, kill_after: float | None = None) -> Outcome:
    """``enrich --quiet run job.toml`` in a new process (optionally SIGKILLed after a delay)."""
    command = [sys.executable, "-c", "from enrich.cli import main; main()", "--quiet", "run"]
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, str(root / "job.toml")],
        cwd=root,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if kill_after is not None:
            try:
                out, err = process.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                out, err = process.communicate()
        else:
            out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        err += "\n[job_faults] the run did not finish in time"
    return Outcome(process.returncode, out, err, time.monotonic() - started)


def make_job(root: Path, data: pl.DataFrame, *, embeddings: bool) -> None:
    (root / "data").mkdir(parents=True, exist_ok=True)
    data.slice(FIRST_ROWS[0], FIRST_ROWS[1] - FIRST_ROWS[0]).write_parquet(
        root / "data" / "part-000.parquet"
    )
    (root / "lfs.py").write_text(LFS)
    (root / "job.toml").write_text(JOB.format(embeddings=str(embeddings).lower()))


def add_new_rows(root: Path, data: pl.DataFrame) -> None:
    data.slice(NEW_ROWS[0], NEW_ROWS[1] - NEW_ROWS[0]).write_parquet(
        root / "data" / "part-001.parquet"
    )


def final_table(root: Path) -> pl.DataFrame | None:
    from enrich.io.store import read_table

    try:
        frame = read_table(root / "out" / "enriched")
    except Exception:
        return None
    votes = sorted(c for c in frame.columns if c.startswith("vote_"))
    probas = sorted(c for c in frame.columns if c.startswith("proba_"))
    return (
        frame.select([*COMPARED, *votes, *probas])
        .with_columns(pl.col([*probas, "confidence"]).round(6))
        .sort("asset_id")
    )


def committed_versions(root: Path) -> int:
    log = root / "out" / "enriched" / "_delta_log"
    return len(list(log.glob("*.json"))) if log.is_dir() else 0


# -- faults ----------------------------------------------------------------------------------
def _latest_log(root: Path) -> Path:
    return sorted((root / "out" / "enriched" / "_delta_log").glob("*.json"))[-1]


def _move_named_file_aside(root: Path, state: dict, outcome: Outcome) -> None:
    """Apply the recovery a CorruptStateError names: ``mv FILE FILE.corrupt``."""
    line = outcome.error_line
    named = re.search(r"\bmv (\S+) ", line)
    if named is not None:
        target = Path(named.group(1))
        if target.exists():
            target.rename(f"{target}.corrupt")
        return
    if "delete it" in line and "_last_checkpoint" in line:
        (root / "out" / "enriched" / "_delta_log" / "_last_checkpoint").unlink(missing_ok=True)


def corrupt_latest_log(root: Path) -> dict:
    file = _latest_log(root)
    file.write_text(file.read_text()[: len(file.read_text()) // 2])
    return {"file": file}


def garbage_latest_log(root: Path) -> dict:
    file = _latest_log(root)
    file.write_bytes(os.urandom(300))
    return {"file": file}


def delete_latest_log(root: Path) -> dict:
    file = _latest_log(root)
    file.unlink()
    return {"file": file}


def corrupt_run_record(root: Path) -> dict:
    from enrich.io.store import RUN_METADATA_KEY

    file = _latest_log(root)
    lines = file.read_text().splitlines()
    for i, line in enumerate(lines):
        entry = json.loads(line)
        info = entry.get("commitInfo")
        if info and RUN_METADATA_KEY in info:
            info[RUN_METADATA_KEY] = info[RUN_METADATA_KEY][:71]  # an unterminated string
            lines[i] = json.dumps(entry)
    file.write_text("\n".join(lines) + "\n")
    return {"file": file}


def corrupt_runs_table(root: Path) -> dict:
    log = root / "out" / "enriched_runs" / "_delta_log"
    file = sorted(log.glob("*.json"))[-1]
    file.write_text("{not json")
    return {"file": file}


def garbage_latest_report(root: Path) -> dict:
    file = root / "out" / "enriched_reports" / "latest.json"
    file.write_bytes(os.urandom(200))
    return {"file": file}


def garbage_lock_file(root: Path) -> dict:
    file = root / "out" / ".enriched.lock"
    file.write_bytes(os.urandom(100))
    return {"file": file}


def _snapshot(root: Path) -> Path:
    return sorted((root / "out" / "enriched_embeddings" / "index").iterdir())[-1]


def flip_faiss_bytes(root: Path) -> dict:
    file = _snapshot(root) / "index.faiss"
    data = bytearray(file.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    file.write_bytes(bytes(data))
    return {}


def truncate_faiss(root: Path) -> dict:
    file = _snapshot(root) / "index.faiss"
    file.write_bytes(file.read_bytes()[:100])
    return {}


def garbage_faiss_sidecar(root: Path) -> dict:
    (_snapshot(root) / "index.json").write_text("{garbage")
    return {}


def _cache_file(root: Path) -> Path:
    return root / "out" / "enriched_embeddings" / "embeddings.sqlite"


def garbage_cache_header(root: Path) -> dict:
    file = _cache_file(root)
    data = bytearray(file.read_bytes())
    data[:100] = os.urandom(100)
    file.write_bytes(bytes(data))
    return {}


def truncate_cache(root: Path) -> dict:
    file = _cache_file(root)
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 3])
    return {}


def malformed_cache_pages(root: Path) -> dict:
    file = _cache_file(root)
    data = bytearray(file.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 4096
    for number in range(1, len(data) // page):
        data[number * page : number * page + 12] = b"\xff" * 12
    file.write_bytes(bytes(data))
    return {}


def overwrite_cached_vectors(root: Path) -> dict:
    """80 bytes inside 20 stored vectors; SQLite's integrity check still passes."""
    file = _cache_file(root)
    with sqlite3.connect(file) as conn:
        blobs = [bytes(r[0]) for r in conn.execute("SELECT vector FROM vectors LIMIT 20")]
    data = bytearray(file.read_bytes())
    for blob in blobs:
        at = data.find(blob[:64])
        if at >= 0:
            data[at + 16 : at + 20] = b"\x00\x00\x80\x7f"
    file.write_bytes(bytes(data))
    # the index must be rebuilt from the cache for the damage to matter
    shutil.rmtree(root / "out" / "enriched_embeddings" / "index")
    return {}


def hostile_lf_file(text: str) -> Callable[[Path], dict]:
    def inject(root: Path) -> dict:
        (root / "lfs.py").write_text(text)
        return {}

    return inject


def restore_lfs(root: Path, state: dict, outcome: Outcome) -> None:
    (root / "lfs.py").write_text(LFS)


def mount_small_disk(root: Path, *, target: str) -> dict:
    """Put ``target`` (relative to root) on a tmpfs, copy its files, and fill the disk."""
    folder = root / target
    keep = root / f"{target}.before"
    shutil.copytree(folder, keep)
    shutil.rmtree(folder)
    folder.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(folder)
        keep.rename(folder)
        raise SkipTrial(f"cannot mount a tmpfs: {done.stderr.strip() or 'not root'}")
    shutil.copytree(keep, folder, dirs_exist_ok=True)
    shutil.rmtree(keep)
    filler = folder / "filler.bin"
    free = shutil.disk_usage(folder).free
    try:
        with filler.open("wb") as out:
            out.write(b"\0" * max(0, free - 2048))
    except OSError:
        pass
    return {"filler": filler, "mount": folder}


def free_the_disk(root: Path, state: dict, outcome: Outcome) -> None:
    state["filler"].unlink(missing_ok=True)


class SkipTrial(Exception):
    """The trial cannot run here (e.g. no permission to mount a tmpfs)."""


def unmount(state: dict) -> None:
    folder = state.get("mount")
    if folder is None:
        return
    keep = Path(f"{folder}.after")
    shutil.copytree(folder, keep)
    subprocess.run(["umount", "-l", str(folder)], check=False)
    shutil.rmtree(folder, ignore_errors=True)
    keep.rename(folder)


KILL_PHASES = (
    "locked",
    "read",
    "voted",
    "fitted",
    "enriched",
    "before_commit",
    "after_commit",
    "after_runs",
    "done",
)


def _nothing(root: Path) -> dict:
    return {}


def trials(*, quick: bool) -> list[Trial]:
    found: list[Trial] = []
    phases = ("before_commit", "after_commit") if quick else KILL_PHASES
    for phase in phases:
        found.append(Trial("sigkill", f"at {phase}", _nothing, env={"ENRICH_TEST_KILL_AT": phase}))
    delays = (1.5,) if quick else (0.5, 1.5, 2.5, 4.0, 6.0)
    for delay in delays:
        found.append(
            Trial("sigkill", f"after {delay:g} s", _nothing, env={"_KILL_AFTER": str(delay)})
        )
    for delay in () if quick else (3.0, 8.0):
        found.append(
            Trial(
                "sigkill",
                f"after {delay:g} s (embeddings)",
                _nothing,
                embeddings=True,
                env={"_KILL_AFTER": str(delay)},
            )
        )
    state_files = [
        Trial("corrupt", "delta log: latest truncated", corrupt_latest_log, _move_named_file_aside),
        Trial("corrupt", "delta log: latest garbage", garbage_latest_log, _move_named_file_aside),
        Trial("corrupt", "delta log: latest deleted", delete_latest_log),
        Trial("corrupt", "run record: unterminated", corrupt_run_record, _move_named_file_aside),
        Trial("corrupt", "runs table log", corrupt_runs_table),
        Trial("corrupt", "latest.json garbage", garbage_latest_report),
        Trial("corrupt", "lock file garbage", garbage_lock_file),
        Trial("corrupt", "faiss: bytes flipped", flip_faiss_bytes, embeddings=True),
        Trial("corrupt", "faiss: truncated", truncate_faiss, embeddings=True),
        Trial("corrupt", "faiss: sidecar garbage", garbage_faiss_sidecar, embeddings=True),
        Trial("corrupt", "cache: garbage header", garbage_cache_header, embeddings=True),
        Trial("corrupt", "cache: truncated", truncate_cache, embeddings=True),
        Trial("corrupt", "cache: malformed pages", malformed_cache_pages, embeddings=True),
        Trial("corrupt", "cache: vectors overwritten", overwrite_cached_vectors, embeddings=True),
    ]
    if quick:
        state_files = [state_files[0], state_files[3], state_files[7], state_files[13]]
    found.extend(state_files)
    disks = [
        Trial(
            "disk full",
            "output table folder",
            lambda root: mount_small_disk(root, target="out"),
            free_the_disk,
        ),
        Trial(
            "disk full",
            "reports folder",
            lambda root: mount_small_disk(root, target="out/enriched_reports"),
            free_the_disk,
        ),
    ]
    found.extend(disks[:1] if quick else disks)
    hostile = [
        ("raises at import", 'raise RuntimeError("boom at import")\n'),
        ("sys.exit(0) at import", "import sys\nsys.exit(0)\n"),
        ("sys.exit(3) at import", "import sys\nsys.exit(3)\n"),
        ("syntax error", "def broken(:\n"),
        ("defines no LF", "X = 1\n"),
        (
            "LF raises on every row",
            LFS.replace('return "HAM" if', 'raise ValueError("row")\n    return "HAM" if'),
        ),
        ("recursion at import", "def f():\n    return f()\nf()\n"),
    ]
    for name, text in hostile[:2] if quick else hostile:
        found.append(Trial("hostile import", name, hostile_lf_file(text), restore_lfs))
    return found


# -- one trial -------------------------------------------------------------------------------
def run_trial(trial: Trial, workdir: Path, data: pl.DataFrame, reference: dict) -> tuple[str, str]:
    root = workdir / f"{len(list(workdir.iterdir())):02d}"
    root.mkdir()
    make_job(root, data, embeddings=trial.embeddings)
    first = enrich_run(root)
    if first.code != 0:
        return "stuck", f"the set-up run failed: {first.error_line or first.stderr[-300:]}"
    if trial.add_rows:
        add_new_rows(root, data)
    env = dict(trial.env)
    kill_after = float(env.pop("_KILL_AFTER")) if "_KILL_AFTER" in env else None
    try:
        state = trial.inject(root)
    except SkipTrial as exc:
        return "skipped", str(exc)
    versions_before = committed_versions(root)
    notes: list[str] = []
    try:
        faulted = enrich_run(root, env=env, kill_after=kill_after)
        killed = faulted.code in (-signal.SIGKILL, 137)
        if faulted.code == 0:
            notes.append("faulted run exit 0")
        elif killed:
            notes.append("killed")
        elif faulted.one_clear_line:
            notes.append(f"failed: {faulted.error_line[15:110]}")
        else:
            notes.append(f"exit {faulted.code} without one clear line")
        committed = committed_versions(root) > versions_before
        if faulted.code not in (0,) and not killed and committed and "disk" not in trial.kind:
            return "silent", "reported failure after its commit; " + "; ".join(notes)
        trial.undo(root, state, faulted)
    finally:
        unmount(state)
    later = [enrich_run(root)]
    if later[-1].code != 0:
        later.append(enrich_run(root))
    if later[-1].code != 0:
        return "stuck", "; ".join(
            [*notes, f"then: {later[-1].error_line or later[-1].stderr[-200:]}"]
        )
    expected = reference[trial.embeddings]
    got = final_table(root)
    differing = "no table" if got is None else _differences(got, expected)
    if differing:
        return "silent", "; ".join(
            [*notes, f"final table differs from an uninterrupted run: {differing}"]
        )
    if faulted.code == 0 and not faulted.stdout.startswith("run "):
        return "silent", "; ".join([*notes, "exit 0 without a run line"])
    if faulted.code not in (0,) and not killed and not faulted.one_clear_line:
        return "stuck", "; ".join([*notes, "the error is not one clear line"])
    return "clean", "; ".join(notes)


def _differences(got: pl.DataFrame, expected: pl.DataFrame) -> str:
    """What differs from the uninterrupted run ("" when nothing does).

    Ids, labels, review flags and votes must be equal. Probabilities and confidence may
    differ by ``output.proba_tolerance``: a run rewrites an unchanged asset only when its
    label or review flag flips or a probability moves by more than that, so a table rebuilt
    in one run (after a lost version) and one built over two runs agree to that tolerance.
    """
    if got.columns != expected.columns or got.height != expected.height:
        return f"{got.height} rows against {expected.height}"
    joined = got.join(expected, on="asset_id", how="full", suffix="_want")
    exact = [c for c in got.columns if c != "asset_id" and not _is_probability(c)]
    close = [c for c in got.columns if _is_probability(c)]
    wrong = sum(int((~joined[c].eq_missing(joined[f"{c}_want"])).sum()) for c in exact)
    far = sum(
        int(((joined[c] - joined[f"{c}_want"]).abs() > PROBA_TOLERANCE + 1e-9).sum()) for c in close
    )
    if wrong or far:
        return f"{wrong} labels/votes/flags and {far} probabilities differ"
    return ""


def _is_probability(column: str) -> bool:
    return column == "confidence" or column.startswith("proba_")


def references(workdir: Path, data: pl.DataFrame, kinds: set[bool]) -> dict:
    """The final table of an uninterrupted two-run job, with and without embeddings."""
    found = {}
    for embeddings in sorted(kinds):
        root = workdir / f"reference-{'emb' if embeddings else 'plain'}"
        root.mkdir()
        make_job(root, data, embeddings=embeddings)
        assert enrich_run(root).code == 0
        add_new_rows(root, data)
        assert enrich_run(root).code == 0
        found[embeddings] = final_table(root)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one or two trials of each kind")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders")
    parser.add_argument(
        "--only", default="", help="comma-separated words; run the trials whose name has one"
    )
    args = parser.parse_args(argv)
    from enrich.datasets import load_youtube_spam

    data = load_youtube_spam()
    chosen = trials(quick=args.quick)
    if args.only:
        words = [w.strip() for w in args.only.split(",") if w.strip()]
        chosen = [t for t in chosen if any(w in f"{t.kind} {t.name}" for w in words)]
    workdir = Path(tempfile.mkdtemp(prefix="enrich-job-faults-"))
    started = time.monotonic()
    counts = {"tried": 0, "clean": 0, "stuck": 0, "silent": 0, "skipped": 0}
    try:
        reference = references(workdir, data, {t.embeddings for t in chosen})
        trial_dir = workdir / "trials"
        trial_dir.mkdir()
        for trial in chosen:
            verdict, detail = run_trial(trial, trial_dir, data, reference)
            counts[verdict] += 1
            if verdict != "skipped":
                counts["tried"] += 1
            print(f"{verdict:7s} {trial.kind:15s} {trial.name:32s} {detail}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"tried {counts['tried']} / clean {counts['clean']} / stuck {counts['stuck']} / "
        f"silent {counts['silent']}"
        + (f" ({counts['skipped']} skipped)" if counts["skipped"] else "")
        + f"  [{time.monotonic() - started:.0f} s]"
    )
    return 0 if counts["stuck"] == 0 and counts["silent"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
