"""Figures read back from a run's manifest that both the dataset card and the HTML report show."""

from __future__ import annotations

from dataclasses import dataclass

from sftforge.figures import CleanFigures, ContaminationFigures, read_figures
from sftforge.run import RunDir


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """Records into a stage, kept and removed by it."""

    stage: str
    input: int | None
    kept: int | None
    removed: int | None


@dataclass(frozen=True, slots=True)
class OperatorRow:
    """A cleaning operator: records it saw and records it removed."""

    name: str
    seen: int
    removed: int


def funnel_rows(run: RunDir) -> list[FunnelRow]:
    """Records in, kept and removed per stage, in pipeline order (generate counts its work as its input)."""
    rows = []
    gen = run.stage_info("generate")
    if gen:
        g = gen.counts
        made = g.get("work_items", g.get("paths", g.get("records", 0) + g.get("rejected", 0)))
        rows.append(FunnelRow("generate", made, g.get("records", 0), g.get("rejected", 0)))
    clean = run.stage_info("clean")
    if clean:
        c = clean.counts
        rows.append(FunnelRow("clean", c.get("input", 0), c.get("records", 0), c.get("rejected", 0)))
    for name in ("select", "train"):
        info = run.stage_info(name)
        c = info.counts if info else {}
        if "records" in c and "rejected" in c:
            rows.append(FunnelRow(name, c.get("input", c["records"] + c["rejected"]), c["records"], c["rejected"]))
    return rows


def operator_rows(run: RunDir) -> list[OperatorRow]:
    """Per cleaning operator, in the order they ran: records it saw and records it removed."""
    clean = read_figures(run, CleanFigures)
    if clean is None:
        return []
    return [OperatorRow(k, v, clean.removed_by_operator.get(k, 0)) for k, v in clean.seen_by_operator.items()]


def pii_by_type(run: RunDir) -> dict[str, int]:
    """PII found by the redaction mapper, by type."""
    clean = read_figures(run, CleanFigures)
    pii = clean.pii() if clean else None
    return dict(pii.found_by_type) if pii else {}


def contamination(run: RunDir) -> ContaminationFigures | None:
    """The decontamination operator's figures (checked, contaminated, per benchmark), or None without one."""
    clean = read_figures(run, CleanFigures)
    return clean.contamination() if clean else None
