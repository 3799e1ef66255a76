"""Render the report's data into one self-contained HTML file: styles, script and data inline, nothing fetched."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from sftforge.recipe import Recipe
from sftforge.report.collect import ReportOptions, collect
from sftforge.run import RunDir, atomic_write_bytes

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"


def _asset(name: str) -> str:
    return resources.files("sftforge.report").joinpath("assets", name).read_text(encoding="utf-8")


def data_json(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: no `<` at all (so neither `</script>` nor `<!--` can change how the
    HTML parser reads the element), and NaN is refused, not written."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(data: dict[str, Any], review: bool = False) -> str:
    env = jinja2.Environment(autoescape=True)
    template = env.from_string(_asset("report.html.j2"))
    title = f"sftforge {'review' if review else 'report'}: {data['run']['name']}"
    return template.render(
        title=title,
        review=review,
        css=Markup(_asset("report.css")),
        js=Markup(_asset("report.js")),
        data=Markup(data_json(data)),
    )


_DEFAULT_OPTIONS = ReportOptions()


def write_report(run: RunDir, recipe: Recipe, options: ReportOptions = _DEFAULT_OPTIONS) -> Path:
    """Collect and write RUN_DIR/report.html (atomically: a crash leaves the previous report)."""
    html = render_html(collect(run, recipe, options))
    path = run.path / REPORT_FILE
    atomic_write_bytes(path, html.encode("utf-8"))
    log.info("report: %s", path)
    return path
