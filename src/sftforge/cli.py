"""The `sftforge` command: run a recipe, run or inspect one stage of a run directory, print the recipe schema."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from sftforge.errors import SftforgeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn documents into a validated supervised fine-tuning dataset with a real LLM, from one recipe.",
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default: runs/<recipe name>).")]
RunDirArg = Annotated[Path, typer.Argument(help="A run directory made by `sftforge run`.")]


def _setup_logging(verbose: bool) -> None:
    """Rich log lines on a terminal; plain, unwrapped lines otherwise (CI logs, files, pipes)."""
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False, show_time=False)
        fmt = "%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(message)s"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, handlers=[handler], force=True)
    for noisy in ("httpx", "datasets", "filelock", "fsspec", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _guard(fn):
    """Print user errors without a traceback; keep Ctrl-C quiet and resumable."""

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SftforgeError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: completed work is saved; rerun the same command to resume.")
            raise typer.Exit(130) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__annotations__ = fn.__annotations__
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _context(run_dir: Path, reporter):
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context

    run = RunDir.open(run_dir)
    recipe, _ = load_recipe(run.recipe_path)
    base = run.manifest.get("recipe_dir")
    if base:
        recipe._base_dir = Path(base)
    return Context(run=run, recipe=recipe, reporter=reporter)


@app.command()
@_guard
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    out_dir: OutOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run every stage of a recipe. Rerunning resumes: completed stages are skipped, generation continues."""
    from sftforge.progress import RichReporter
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_rounds

    _setup_logging(verbose)
    rec, text = load_recipe(recipe)
    run_dir = out_dir or Path("runs") / rec.name
    run_ = RunDir.create(run_dir, text, rec.name, recipe.resolve().parent)
    with RichReporter(console) as reporter:
        rounds = run_rounds(Context(run=run_, recipe=rec, reporter=reporter), text)
    for r, round_run, results in rounds:
        skipped = [name for name, ran in results if not ran]
        if skipped:
            console.print(f"{f'round {r}: ' if len(rounds) > 1 else ''}up to date, skipped: {', '.join(skipped)}")
        _summary(round_run.path)
        try:
            out.print(f"report: {_write_report(round_run.path)}")
        except Exception as exc:  # the dataset is written; a report problem must not fail the run
            logging.getLogger("sftforge.report").warning(
                "the dataset is complete, but the report could not be written (%s); fix that and run `sftforge "
                "report %s`",
                exc,
                round_run.path,
                exc_info=not isinstance(exc, SftforgeError),
            )
    if len(rounds) > 1:
        out.print(f"final dataset (round {rounds[-1][0]}): {rounds[-1][1].stage_dir('export')}")


def _stage_command(name: str, doc: str):
    def command(
        run_dir: RunDirArg,
        force: Annotated[bool, typer.Option("--force", help="Redo the stage even if it is up to date.")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    ) -> None:
        from sftforge.progress import RichReporter
        from sftforge.stages import run_stage

        _setup_logging(verbose)
        with RichReporter(console) as reporter:
            ran = run_stage(_context(run_dir, reporter), name, force=force)
        if not ran:
            console.print(f"{name}: up to date (use --force to redo)")
        _summary(run_dir)

    command.__doc__ = doc
    command.__name__ = name
    return _guard(command)


app.command("sources")(_stage_command("sources", "Read, chunk and rank the recipe's documents."))
app.command("generate")(_stage_command("generate", "Generate records from ranked passages (resumable)."))
app.command("features")(
    _stage_command("features", "Compute the recipe's feature operators over the generated records.")
)
app.command("clean")(
    _stage_command("clean", "Apply PII redaction, filters, decontamination and dedup to the featured records.")
)
app.command("select")(
    _stage_command("select", "Hold out the evaluation split, form the bandit's arms and pick the static selection.")
)
app.command("train")(
    _stage_command(
        "train", "Fine-tune on the selection (LoRA or full); with a bandit, learn which arms help (resumable)."
    )
)
app.command("evaluate")(
    _stage_command("evaluate", "Held-out loss, perplexity and answer metrics of the base and the fine-tuned model.")
)
app.command("export")(_stage_command("export", "Write the dataset files and the dataset card."))


@app.command()
@_guard
def merge(
    run_dir: RunDirArg,
    target: Annotated[
        Path, typer.Option("--out", help="Folder for the merged model; default RUN_DIR/train/merged.")
    ] = None,  # type: ignore[assignment]
) -> None:
    """Fold the trained LoRA adapter into the base model and save it as a plain transformers model."""
    from sftforge.errors import StageError
    from sftforge.llm.hf import model_dir
    from sftforge.progress import SilentReporter
    from sftforge.storage import weights_dir
    from sftforge.train.model import merge_adapter

    ctx = _context(run_dir, SilentReporter())
    cfg = ctx.recipe.training
    if cfg is None or cfg.method != "lora":
        raise StageError("merge needs a LoRA training run (training.method: lora)")
    adapter = weights_dir(ctx.run, cfg.method)
    if not (adapter / "adapter_config.json").exists():
        raise StageError(f"no adapter in {adapter}: run `sftforge train {run_dir}` first")
    dest = merge_adapter(
        model_dir(cfg.model, ctx.recipe.base_dir), adapter, target or ctx.run.stage_dir("train") / "merged", cfg.dtype
    )
    out.print(f"merged model: {dest}")


BenchmarkOption = Annotated[
    Path | None,
    typer.Option("--benchmark", help="Results JSON of benchmarks/selection.py, shown as the baseline comparison."),
]
MaxRecordsOption = Annotated[
    int, typer.Option("--max-records", min=1, help="Records embedded in the browser and map (a seeded sample beyond).")
]


def _write_report(run_dir: Path, benchmark: Path | None = None, max_records: int = 5000) -> Path:
    from sftforge.progress import SilentReporter
    from sftforge.report.collect import ReportOptions
    from sftforge.report.render import write_report

    ctx = _context(run_dir, SilentReporter())
    with console.status("writing the report"):
        return write_report(ctx.run, ctx.recipe, ReportOptions(max_records=max_records, benchmark=benchmark))


@app.command()
@_guard
def report(run_dir: RunDirArg, benchmark: BenchmarkOption = None, max_records: MaxRecordsOption = 5000) -> None:
    """Write RUN_DIR/report.html: funnel, distributions, embedding map, cleaning, selection, a record browser."""
    _setup_logging(False)
    out.print(f"report: {_write_report(run_dir, benchmark, max_records)}")


@app.command()
@_guard
def review(
    run_dir: RunDirArg,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8765,
    benchmark: BenchmarkOption = None,
    max_records: MaxRecordsOption = 5000,
) -> None:
    """Serve the record browser on 127.0.0.1 to accept or reject records; `sftforge export RUN_DIR` applies them."""
    from sftforge.progress import SilentReporter
    from sftforge.report.collect import ReportOptions
    from sftforge.review.server import ReviewServer

    _setup_logging(False)
    ctx = _context(run_dir, SilentReporter())
    try:
        server = ReviewServer(ctx.run, ctx.recipe, port, ReportOptions(max_records=max_records, benchmark=benchmark))
    except OSError as exc:
        raise SftforgeError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; choose another --port") from exc
    out.print(f"review {run_dir} at {server.url}  (Ctrl-C to stop; decisions go to {run_dir}/review/decisions.jsonl)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print(f"stopped. Run `sftforge export {run_dir}` to write the decisions into the dataset.")
    finally:
        server.server_close()


def _summary(run_dir: Path) -> None:
    from sftforge.run import RunDir

    run_ = RunDir.open(run_dir)
    table = Table(title=f"run {run_dir}", title_justify="left")
    for col in ("stage", "status", "counts", "seconds"):
        table.add_column(col)
    for name, info in run_.stages().items():
        counts = ", ".join(f"{k} {v}" for k, v in info.counts.items())
        table.add_row(name, info.status, counts, f"{info.seconds:.1f}")
    out.print(table)
    export = run_.stage_dir("export")
    if (export / "README.md").exists():
        out.print(f"dataset: {export}")


@app.command()
@_guard
def inspect(
    run_dir: RunDirArg,
    n: Annotated[int, typer.Option("--records", "-n", help="How many records to show.")] = 3,
) -> None:
    """Counts per stage, rejects by reason, and a few records."""
    from sftforge.run import RunDir
    from sftforge.sample import reason_kind, table_to_records

    run_ = RunDir.open(run_dir)
    _summary(run_dir)
    rejected = run_.read_rejected(columns=["reject_stage", "reject_operator", "reject_reason"])
    if rejected.num_rows:
        reasons = Counter(
            zip(
                rejected.column("reject_stage").to_pylist(),
                rejected.column("reject_operator").to_pylist(),
                map(reason_kind, rejected.column("reject_reason").to_pylist()),
            )
        )
        t = Table(title=f"rejected: {rejected.num_rows}", title_justify="left")
        for col in ("stage", "operator", "reason", "records"):
            t.add_column(col)
        for (stage, op, reason), count in reasons.most_common(15):
            t.add_row(stage, op, reason, str(count))
        out.print(t)
    final = next((s for s in ("clean", "generate") if (run_.stage_dir(s)).exists()), None)
    if final:
        total = run_.read_table(final, columns=["id"]).num_rows
        records: list = []
        for table in run_.iter_tables(final):  # only the shards the first n records are in
            records += table_to_records(table.slice(0, n - len(records)))
            if len(records) >= n:
                break
        out.print(f"[bold]{total} records[/] in {final}; the first {len(records)}:")
        for r in records:
            out.rule(f"{r.id}  {r.task}/{r.lang}")
            for m in r.messages:
                out.print(f"[bold]{m['role']}:[/] {m['content']}", highlight=False)
            if r.answer_check:
                c = r.answer_check
                out.print(f"[dim]answer_check: {c.method} passed={c.passed} score={c.score:.2f} ({c.detail})[/]")
            src = ", ".join(
                f"{s.kind} {s.id}" + (f" [{s.start}:{s.end}]" if s.start is not None else "") for s in r.source
            )
            out.print(f"[dim]source: {src}[/]", highlight=False)


@app.command()
@_guard
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file instead of stdout.")] = None,
) -> None:
    """Print the recipe's JSON Schema (for editor completion and validation)."""
    from sftforge.recipe import json_schema

    text = json.dumps(json_schema(), indent=2, ensure_ascii=False)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


@app.command()
@_guard
def audiences(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (it needs documents).")],
    out_dir: OutOption = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=12, help="Audiences to propose.")] = 3,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Ask the recipe's model who reads the documents; write RUN_DIR/audiences.yaml to edit into task.audiences."""
    from collections import Counter

    import yaml

    from sftforge.generate.proposals import ProposeAudienceStep, propose_audiences
    from sftforge.generate.runner import ask
    from sftforge.llm import open_llm
    from sftforge.progress import RichReporter
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir, atomic_write_bytes
    from sftforge.stages import Context, run_stage
    from sftforge.storage import read_passages

    _setup_logging(verbose)
    rec, text = load_recipe(recipe)
    if not rec.sources.documents:
        raise typer.BadParameter(f"{recipe} has no sources.documents: audiences are proposed from documents")
    run_dir = out_dir or Path("runs") / rec.name
    run_ = RunDir.create(run_dir, text, rec.name, recipe.resolve().parent)
    with RichReporter(console) as reporter:
        run_stage(Context(run=run_, recipe=rec, reporter=reporter), "sources")
    gen = rec.generation
    step = ProposeAudienceStep(rec.task.language)
    stats: Counter[str] = Counter()
    with open_llm(gen.model, rec.resolve("."), run_.path / "cache" / "llm.sqlite" if gen.cache else None) as llm:
        found, failed = propose_audiences(
            read_passages(run_), count, lambda items: ask(llm, step, items, gen, gen.sampling, stats), rec.task.language
        )
    entries = [a.model_dump(exclude_none=True, exclude_defaults=True) for a in found]
    note = (
        f"# Audiences the model proposed for {rec.name} ({len(found)} of {count} asked; "
        f"{sum(failed.values())} answers unusable). Edit them, add interests, a Bloom level for exercises or a\n"
        "# length, and paste the list under `task:` in the recipe.\n"
    )
    body = yaml.safe_dump({"audiences": entries}, sort_keys=False, allow_unicode=True)
    path = run_.path / "audiences.yaml"
    atomic_write_bytes(path, (note + body).encode("utf-8"))
    typer.echo(note + body + f"written to {path}")


@app.command()
@_guard
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")]) -> None:
    """Check a recipe without running it."""
    from sftforge.recipe import load_recipe

    rec, _ = load_recipe(recipe)
    out.print(
        f"{recipe}: valid recipe '{rec.name}' ({rec.task.type}, {rec.task.language}, target {rec.task.target_count})"
    )


if __name__ == "__main__":  # pragma: no cover
    app()
