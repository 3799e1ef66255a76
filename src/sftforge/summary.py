"""Figures read back from a run's manifest that both the dataset card and the HTML report show."""

from __future__ import annotations

from typing import Any


def funnel_rows(stages: dict[str, Any]) -> list[dict[str, Any]]:
    """Records in, kept and removed per stage, in pipeline order (generate counts work items as its input)."""
    rows = []
    gen = stages.get("generate")
    if gen:
        g = gen.get("counts", {})
        made = g.get("work_items", g.get("paths", g.get("records", 0) + g.get("rejected", 0)))
        rows.append({"stage": "generate", "input": made, "kept": g.get("records", 0), "removed": g.get("rejected", 0)})
    clean = stages.get("clean")
    if clean:
        c = clean.get("counts", {})
        rows.append({"stage": "clean", "input": c.get("input", 0), "kept": c.get("records", 0), "removed": c.get("rejected", 0)})
    for name in ("select", "train"):
        c = stages.get(name, {}).get("counts", {})
        if "records" in c and "rejected" in c:
            rows.append({"stage": name, "input": c.get("input", c["records"] + c["rejected"]), "kept": c["records"],
                         "removed": c["rejected"]})
    return rows


def operator_rows(stages: dict[str, Any]) -> list[dict[str, Any]]:
    """Per cleaning operator: records it saw and records it removed."""
    extra = stages.get("clean", {}).get("extra", {})
    seen, removed = extra.get("seen_by_operator", {}), extra.get("removed_by_operator", {})
    return [{"name": k, "seen": v, "removed": removed.get(k, 0)} for k, v in seen.items()]


def pii_by_type(stages: dict[str, Any]) -> dict[str, int]:
    """PII found by the redaction mapper, by type."""
    return stages.get("clean", {}).get("extra", {}).get("operators", {}).get("pii_redact", {}).get("found_by_type", {})


def contamination(stages: dict[str, Any]) -> dict[str, Any] | None:
    """The decontamination operator's figures (checked, contaminated, per benchmark), or None without one."""
    for stats in stages.get("clean", {}).get("extra", {}).get("operators", {}).values():
        if isinstance(stats, dict) and "contaminated_by_benchmark" in stats:
            return stats
    return None
