"""How fast does sftforge take in what organisations have, and does a curation run over a big dataset fit in memory?

1. Documents: `--docs` PDFs (`--pages` pages each, text layer) and as many DOCX files (paragraphs, headings, a
   table), made here from the PEP texts in examples/data/peps. sftforge's reader (`sources.readers.read_documents`:
   extraction plus page offsets, decoding, the skip checks) is timed against the library's raw extraction in the
   same run (pypdf `extract_text` per page, python-docx paragraphs and table cells), alternating, `--repeat`
   times; medians. Printed: documents/s and MB/s of both, and the ratio per format.
2. Import: an Alpaca-style JSONL of `--import-rows` rows (the 175 Self-Instruct seed tasks with row-specific
   inputs) read by the sources stage with the data search on (`hybrid`: BM25 and MiniLM), in rows/s.
3. Scale: a curation recipe over such a file of `--rows` rows (import, cheap features, exact and MinHash dedup,
   PII redaction, decontamination against GSM8K, export, report) run by `sftforge run` in a child process, on each
   engine of `--engines`; its wall time and the peak resident memory of its process tree (Ray's workers
   included).

    python benchmarks/ingest.py [--docs 20] [--pages 20] [--import-rows 100000] [--rows 100000] [--repeat 3]
                                [--engines local,ray] [--skip-scale]

Last lines: `ingest vs raw: R` (the lower of the PDF and DOCX ratios; goal >= 0.8), `import rows/s: N`, and,
unless --skip-scale, each engine's time and peak, then `peak memory MiB: M` (the higher of the engines'; goal
under 4 GiB at 1,000,000 rows).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "examples" / "data" / "home_manuals"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from build import pdf_bytes  # noqa: E402  (the example's PDF writer)


def pep_paragraphs() -> list[str]:
    out = []
    for path in sorted((REPO / "examples" / "data" / "peps").glob("*.rst")):
        for para in path.read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(para.split())
            if len(text) > 80 and text.isascii():
                out.append(text)
    return out


def make_documents(folder: Path, docs: int, pages: int) -> tuple[list[Path], list[Path]]:
    import docx

    paras = pep_paragraphs()
    pdfs, docxs = [], []
    k = 0
    for d in range(docs):
        doc_pages = []
        for _ in range(pages):
            page = [f"Document {d}, page {len(doc_pages) + 1}"]
            while sum(len(p) for p in page) < 2500:
                page.append(paras[k % len(paras)])
                k += 1
            doc_pages.append(page)
        path = folder / f"doc{d:03d}.pdf"
        path.write_bytes(pdf_bytes(doc_pages))
        pdfs.append(path)
        document = docx.Document()
        document.add_heading(f"Document {d}", level=1)
        for p, page in enumerate(doc_pages):
            document.add_heading(f"Section {p + 1}", level=2)
            for para in page[1:]:
                document.add_paragraph(para)
        table = document.add_table(rows=0, cols=3)
        for r in range(10):
            for cell, text in zip(table.add_row().cells, (f"row {r}", paras[r][:40], paras[r + 1][:40])):
                cell.text = text
        path = folder / f"doc{d:03d}.docx"
        document.save(str(path))
        docxs.append(path)
    return pdfs, docxs


def raw_pdf(files: list[Path]) -> int:
    from pypdf import PdfReader

    return sum(len("\n".join(page.extract_text() for page in PdfReader(str(f)).pages)) for f in files)


def raw_docx(files: list[Path]) -> int:
    import docx

    chars = 0
    for f in files:
        document = docx.Document(str(f))
        chars += sum(len(p.text) for p in document.paragraphs)
        chars += sum(len(c.text) for t in document.tables for row in t.rows for c in row.cells)
    return chars


def sftforge_read(files: list[Path]) -> int:
    from sftforge.sources.readers import ReadReport, read_documents

    report = ReadReport()
    chars = sum(len(d.text) for d in read_documents(files, files[0].parent, report=report))
    assert not report.skipped, report.skipped
    return chars


def time_documents(pdfs: list[Path], docxs: list[Path], repeat: int) -> float:
    ratios = []
    for label, files, raw in (("PDF", pdfs, raw_pdf), ("DOCX", docxs, raw_docx)):
        mb = sum(f.stat().st_size for f in files) / 1e6
        times: dict[str, list[float]] = {"raw": [], "sftforge": []}
        for _ in range(repeat):
            for name, fn in (("raw", raw), ("sftforge", sftforge_read)):
                start = time.perf_counter()
                fn(files)
                times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        for name in ("raw", "sftforge"):
            print(
                f"{label} {name:8s}: {len(files) / med[name]:7.1f} documents/s  {mb / med[name]:6.2f} MB/s  "
                f"(median of {repeat}, min {min(times[name]):.2f} s, max {max(times[name]):.2f} s)"
            )
        ratio = med["raw"] / med["sftforge"]
        print(f"{label} ingest vs raw: {ratio:.2f}")
        ratios.append(ratio)
    return min(ratios)


def make_rows(path: Path, rows: int) -> None:
    """`rows` Alpaca rows: the seed tasks in turn, each with an input of its own (so no two rows are equal)."""
    seeds = [
        json.loads(line)
        for line in (REPO / "examples/data/instruction_slice/self_instruct_alpaca.jsonl").read_text().splitlines()
    ]
    words = " ".join(pep_paragraphs()).split()
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            seed = seeds[i % len(seeds)]
            start = (i * 7) % (len(words) - 20)
            extra = " ".join(words[start : start + 12])
            row = {
                "id": f"r{i}",
                "instruction": seed["instruction"],
                "input": (seed["input"] + "\n" if seed["input"] else "") + f"Case {i}: {extra}",
                "output": seed["output"],
            }
            fh.write(json.dumps(row) + "\n")


def recipe(path: Path, rows_file: Path, search: str, scale: bool, engine: str = "local") -> Path:
    data: dict = {
        "name": "ingest_bench",
        "task": {
            "type": "instruction",
            "description": "Writing help: rewrite, summarise or correct a text, or write an email or a story.",
            "target_count": 10**9,
        },
        "sources": {"datasets": [{"path": str(rows_file), "format": "alpaca"}], "search": {"method": search}},
        "generators": [{"name": "import"}],
    }
    if scale:
        data |= {
            "features": [{"name": "length", "role": "assistant", "unit": "tokens"}],
            "cleaning": {
                "mappers": [{"name": "pii_redact"}],
                "filters": [
                    {"name": "format"},
                    {
                        "name": "decontaminate",
                        "benchmarks": [{"path": str(DATA / "benchmarks" / "gsm8k_test.jsonl"), "fields": ["question"]}],
                    },
                ],
                "dedup": [{"name": "exact_dedup", "scope": "user"}, {"name": "minhash_dedup"}],
            },
            "output": {"formats": ["openai", "parquet"]},
            "engine": engine,
        }
        if engine == "ray":
            data["ray"] = {"num_cpus": 2, "workers": 2}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def time_import(tmp: Path, rows_file: Path, rows: int) -> float:
    from sftforge.progress import SilentReporter
    from sftforge.recipe import load_recipe
    from sftforge.run import RunDir
    from sftforge.stages import Context, run_stage

    path = recipe(tmp / "import.yaml", rows_file, "hybrid", scale=False)
    loaded, text = load_recipe(path)
    run = RunDir.create(tmp / "import-run", text, loaded.name, tmp)
    start = time.perf_counter()
    run_stage(Context(run=run, recipe=loaded, reporter=SilentReporter()), "sources")
    seconds = time.perf_counter() - start
    counts = run.stage_info("sources").counts
    assert counts["imported"] == rows, counts
    print(f"import: {rows} rows read, converted, stored and ranked (hybrid search) in {seconds:.1f} s")
    return rows / seconds


def run_scale(tmp: Path, rows_file: Path, rows: int, engine: str) -> tuple[float, float]:
    """The curation recipe by `sftforge run` in its own process: wall time and the peak resident memory of its
    process tree (Ray's workers included), sampled every 0.2 s."""
    from engines import TreePeak  # the engines benchmark's process-tree memory

    path = recipe(tmp / f"scale-{engine}.yaml", rows_file, "none", scale=True, engine=engine)
    cmd = [str(Path(sys.executable).parent / "sftforge"), "run", str(path), "--out", str(tmp / f"scale-{engine}")]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=os.environ | {"RAY_ADDRESS": ""}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with TreePeak(proc.pid) as peak_of:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    peak = peak_of.mib
    if proc.returncode != 0:
        print(out.decode()[-3000:], err.decode()[-3000:], sep="\n")
        raise SystemExit(f"the curation run over {rows} rows on {engine} failed (exit {proc.returncode})")
    print(textwrap.indent(out.decode()[-1800:], "  "))
    return peak, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the curation (scale) run")
    parser.add_argument("--import-rows", type=int, default=100_000, help="rows of the import-with-search timing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="local,ray", help="engines of the curation run (comma-separated)")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "docs").mkdir()
        pdfs, docxs = make_documents(tmp / "docs", args.docs, args.pages)
        ratio = time_documents(pdfs, docxs, args.repeat)
        import_file = tmp / "import.jsonl"
        make_rows(import_file, args.import_rows)
        rate = time_import(tmp, import_file, args.import_rows)
        rows_file = tmp / "rows.jsonl"
        make_rows(rows_file, args.rows)
        print(f"curation input: {args.rows} rows, {rows_file.stat().st_size / 1e6:.1f} MB")
        scale = {} if args.skip_scale else {e: run_scale(tmp, rows_file, args.rows, e) for e in args.engines.split(",")}
        print(f"ingest vs raw: {ratio:.2f}")
        print(f"import rows/s: {rate:.0f}")
        for engine, (peak, seconds) in scale.items():
            print(f"curation over {args.rows} rows on {engine}: {seconds:.0f} s, peak memory {peak:.0f} MiB")
        if scale:
            print(f"peak memory MiB: {max(peak for peak, _ in scale.values()):.0f}")


if __name__ == "__main__":
    main()
