"""The ``enrich`` command line: a thin layer over the library.

Errors from enrich print one line and exit with status 1; ``--debug`` shows the traceback.
Heavy libraries are imported inside commands so ``enrich --help`` answers at once.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from enrich.errors import EnrichError

__all__ = ["app", "main"]

app = typer.Typer(
    name="enrich",
    help="Weak supervision and enrichment: apply labeling functions, fit a label model, "
    "and write labels with their confidence, votes and lineage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_F = TypeVar("_F", bound=Callable[..., Any])


@app.callback()
def _options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or tables.")
    ] = False,
) -> None:
    # the policy holds for this command only: an in-process call (a test, a notebook) gets
    # its environment back when the command ends
    ctx.call_on_close(_restore_callback())
    bars = _progress_bars(quiet=quiet, terminal=sys.stderr.isatty())
    ctx.obj = {"debug": debug, "quiet": quiet, "progress": bars}


_BAR_SWITCHES = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")


def _restore_callback() -> Callable[[], None]:
    """A function that puts back the progress switches as they are now."""
    saved = {name: os.environ.get(name) for name in _BAR_SWITCHES}
    hub_was_on = "huggingface_hub" in sys.modules and not _hub_bars_disabled()

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if hub_was_on:
            from huggingface_hub.utils import enable_progress_bars

            enable_progress_bars()

    return restore


def _hub_bars_disabled() -> bool:
    from huggingface_hub.utils import are_progress_bars_disabled

    return bool(are_progress_bars_disabled())


def _progress_bars(*, quiet: bool, terminal: bool) -> bool | None:
    """Set the progress policy of this process; return the ``progress=`` for enrich calls.

    Bars are for a person at a terminal: with ``--quiet``, or when stderr is a file or a
    pipe (a log), every bar is off -- enrich's own and those of the libraries it loads
    (tqdm, Hugging Face Hub downloads, transformers' weight loading), so no
    carriage-return bar lands in a log. In a terminal enrich shows bars for long work
    (``progress=None``).
    """
    if not quiet and terminal:
        return None
    os.environ["TQDM_DISABLE"] = "1"  # tqdm >= 4.66 reads its defaults from TQDM_*
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read by huggingface_hub and transformers
    if quiet:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "huggingface_hub" in sys.modules:  # already imported: its switch was read at import
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    return False


def _debug(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``--debug`` was given (read from the command's ``ctx`` argument)."""
    ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, typer.Context)), None)
    return bool(ctx is not None and (ctx.obj or {}).get("debug"))


def _reports_errors(command: _F) -> _F:
    """Turn any failure into one line on stderr and exit status 1 (``--debug``: traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if _debug(args, kwargs):
                raise
            known = isinstance(exc, EnrichError | ValueError | OSError)
            text = str(exc).strip() or type(exc).__name__
            reason = text if known else f"{type(exc).__name__}: {text}"
            line = plain_text(f"enrich: error: {reason}".splitlines()[0])
            typer.secho(line, err=True, fg="red")
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@_reports_errors
def demo(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for enriched.parquet and run.json.")
    ] = Path("out/demo"),
    n_jobs: Annotated[int, typer.Option(help="Worker processes for row-wise LFs.")] = 1,
) -> None:
    """Run the whole loop on the bundled YouTube spam data and write the enriched table."""
    from rich.console import Console

    from enrich.demo import run_demo

    quiet = ctx.obj["quiet"]
    console = Console(quiet=quiet, width=None if sys.stdout.isatty() else 200)
    result = run_demo(output, n_jobs=n_jobs, progress=ctx.obj["progress"])
    console.print(result.summary)
    labels = result.enriched.get_column("label_name").value_counts(sort=True)
    console.print(
        "Labels: "
        + ", ".join(
            f"{'no LF vote (no label)' if name is None else name} {count:,}"
            for name, count in labels.iter_rows()
        )
        + f"; {result.enriched.get_column('needs_review').sum():,} flagged for review."
    )
    console.print(
        f"Accuracy against the gold labels (never seen while labeling): "
        f"label model {result.gold_accuracy:.1%}, majority vote "
        f"{result.majority_vote_accuracy:.1%}."
    )
    console.print(f"Wrote {result.enriched_path} and {result.run_path}")


@app.command()
@_reports_errors
def run(
    ctx: typer.Context,
    job: Annotated[Path, typer.Argument(help="The job file (TOML); see `enrich init`.")] = Path(
        "job.toml"
    ),
    rerun_lfs: Annotated[
        list[str] | None,
        typer.Option(
            "--rerun-lfs",
            metavar="NAME|all",
            help="Re-run this LF on every asset even if its version did not change "
            "(repeat the option, or give 'all').",
        ),
    ] = None,
) -> None:
    """Run a job: label new and changed assets, refit, merge into the Delta table.

    Prints one line; writes the JSON summary and HTML report beside the table (the path is
    in the line). Exit status 0 only when the run succeeded.
    """
    from enrich.job.config import load_job_config
    from enrich.job.run import run_job

    names = [n.strip() for value in rerun_lfs or () for n in value.split(",") if n.strip()]
    result = run_job(
        load_job_config(job),
        progress=ctx.obj["progress"],
        rerun_lfs="all" if "all" in names else (names or None),
    )
    for warning in result.warnings:
        typer.secho(plain_text(f"enrich: warning: {warning}"), err=True, fg="yellow")
    typer.echo(plain_text(result.message))


@app.command()
@_reports_errors
def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the example job.")] = Path(
        "job.toml"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example job for the bundled YouTube spam data."""
    from enrich.job.config import example_job_toml

    if path.exists() and not force:
        raise EnrichError(f"{path} already exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example_job_toml(name=path.name), encoding="utf-8")
    typer.echo(f"Wrote {path}: edit [source] and [output], then run `enrich run {path}`")


_JobOption = Annotated[
    Path, typer.Option("--job", "-j", help="Job file whose [output] table to read.")
]
_TableOption = Annotated[
    str | None,
    typer.Option(
        "--table", "-t", help="The enriched Delta table, a path or URI (instead of --job)."
    ),
]
_JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _table_paths(job: Path, table: str | None) -> tuple[Any, Any]:
    """The table and runs table: paths or URIs (with the job's storage options)."""
    from enrich._internal.uri import Location

    if table is not None:
        return Location.of(table), None  # a URI's credentials come from the environment
    from enrich.job.config import load_job_config

    config = load_job_config(job)
    options = config.storage_options_for("output")
    runs = config.output.runs_path
    runs_path = Location.of(runs, options) if runs else None
    return Location.of(config.output.path, options), runs_path


def _print(ctx: typer.Context, value: Any) -> None:
    from rich.console import Console

    Console(quiet=ctx.obj["quiet"], width=160).print(value)


@app.command()
@_reports_errors
def runs(
    ctx: typer.Context,
    job: _JobOption = Path("job.toml"),
    table: _TableOption = None,
    as_json: _JsonOption = False,
) -> None:
    """List the runs of the output table with their metrics."""
    from enrich.io.lineage import runs as list_runs

    path, runs_path = _table_paths(job, table)
    found = list_runs(path, runs_path=runs_path)
    if as_json:
        typer.echo(found.table.write_json())
    else:
        _print(ctx, found)


@app.command()
@_reports_errors
def history(
    ctx: typer.Context,
    asset_id: Annotated[str, typer.Argument(help="The asset's id.")],
    job: _JobOption = Path("job.toml"),
    table: _TableOption = None,
    as_json: _JsonOption = False,
) -> None:
    """Show one asset's label, confidence and LF votes across runs (Delta time travel)."""
    from enrich.io.lineage import history as asset_history

    path, _ = _table_paths(job, table)
    found = asset_history(path, asset_id)
    if as_json:
        typer.echo(found.table.write_json())
    else:
        _print(ctx, found)


@app.command()
@_reports_errors
def diff(
    ctx: typer.Context,
    run_a: Annotated[str, typer.Argument(help="Earlier run: id, prefix, 'previous' or vN.")],
    run_b: Annotated[str, typer.Argument(help="Later run: id, prefix, 'latest' or vN.")],
    job: _JobOption = Path("job.toml"),
    table: _TableOption = None,
    limit: Annotated[int, typer.Option(help="Flipped labels and new assets to list.")] = 20,
    as_json: _JsonOption = False,
) -> None:
    """Show what changed between two runs: labels flipped, new assets, LF coverage."""
    import json

    from enrich.io.lineage import diff as run_diff

    path, _ = _table_paths(job, table)
    found = run_diff(path, run_a, run_b)
    if as_json:
        payload = {
            "run_a": found.run_a,
            "run_b": found.run_b,
            **found.totals,
            "flipped": found.flipped.to_dicts(),
            "new_assets": found.new_assets.to_list(),
            "removed_assets": found.removed_assets.to_list(),
            "coverage": found.coverage.to_dicts(),
        }
        typer.echo(json.dumps(payload, default=str))
        return
    _print(ctx, found)
    if found.flipped.height:
        typer.echo(f"Labels flipped ({found.flipped.height:,}, first {limit} shown):")
        for row in found.flipped.head(limit).iter_rows(named=True):
            # user data goes out as plain text: escapes in an id must not reach the terminal
            typer.echo(
                plain_text(
                    f"  {row['asset_id']}: {_or_dash(row['label_a'])} -> "
                    f"{_or_dash(row['label_b'])} (confidence {_or_dash(row['confidence_a'])} "
                    f"-> {_or_dash(row['confidence_b'])})"
                )
            )
    if found.new_assets.len():
        shown = plain_text(", ".join(str(v) for v in found.new_assets.head(limit).to_list()))
        more = found.new_assets.len() - min(limit, found.new_assets.len())
        typer.echo(f"New assets: {shown}" + (f" ... and {more:,} more" if more else ""))


def plain_text(text: Any) -> str:
    """User text safe for a terminal (:func:`enrich._internal.display.plain_text`)."""
    from enrich._internal.display import plain_text as escape

    return escape(text)


def _or_dash(value: Any) -> str:
    """A label or confidence as text; ``-`` for null (a row no LF voted on)."""
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def main() -> None:
    """Entry point of the ``enrich`` script."""
    app(prog_name="enrich")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
