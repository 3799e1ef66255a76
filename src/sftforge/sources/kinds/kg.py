"""`sources.kg`: a knowledge graph, triple files and optional label files. The sources stage loads it once to check
it and record its size; the generators that need it (kg_walk) load it again (CSR arrays load in seconds)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from sftforge.config import Strict
from sftforge.errors import SourceError
from sftforge.kg import KnowledgeGraph, load_graph
from sftforge.sources.kinds.base import ReadContext, SourceKind, register

if TYPE_CHECKING:
    from sftforge.recipe import Recipe

log = logging.getLogger(__name__)


class KGSource(Strict):
    """A knowledge graph: triple files, and optional files that name its entities and relations."""

    path: str | list[str] = Field(
        description="Triple file(s), relative to the recipe: TSV `head<TAB>relation<TAB>tail`, CSV, pipe-separated "
        "`head|relation|tail`, N-Triples (.nt) or Turtle (.ttl); several files (e.g. splits) make one graph."
    )
    format: Literal["auto", "tsv", "csv", "pipe", "nt", "ttl"] = Field(
        "auto", description="auto: from each file's extension and first line."
    )
    header: bool | None = Field(None, description="Delimited files: whether line 1 is a header; default: detected.")
    labels: list[str] = Field(
        default_factory=list, description="Label files `id<TAB>name` giving entities display names (later files win)."
    )
    relation_labels: str | None = Field(None, description="A label file `id<TAB>name` for relations.")
    label_lang: str | None = Field("en", description="RDF: the rdfs:label language to use (None: any).")

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


def _kg(recipe: Recipe) -> KGSource:
    kg = recipe.sources.kg
    if kg is None:
        raise SourceError(f"task.type {recipe.task.type} needs a knowledge graph: add sources.kg")
    return kg


def load_kg(recipe: Recipe) -> KnowledgeGraph:
    """The recipe's knowledge graph (`sources.kg`), paths resolved against the recipe's folder."""
    kg = _kg(recipe)
    return load_graph(
        [recipe.resolve(p) for p in kg.paths],
        fmt=None if kg.format == "auto" else kg.format,
        labels=[recipe.resolve(p) for p in kg.labels] or None,
        relation_labels=recipe.resolve(kg.relation_labels) if kg.relation_labels else None,
        header=kg.header,
        label_lang=kg.label_lang,
    )


@register
class KG(SourceKind):
    name = "kg"
    Config = KGSource
    description = "A knowledge graph; needed by kg_walk (task kg_qa)."
    needed_as = "its triple file(s)"

    @classmethod
    def files(cls, recipe: Recipe) -> list[Path]:
        kg = _kg(recipe)
        out = []
        for p in kg.paths + kg.labels + ([kg.relation_labels] if kg.relation_labels else []):
            path = recipe.resolve(p)
            if not path.is_file():
                raise SourceError(f"sources.kg: {p} is not a file (looked for {path})")
            out.append(path)
        return out

    @classmethod
    def read(cls, ctx: ReadContext) -> tuple[dict[str, int], dict[str, Any]]:
        graph = load_kg(ctx.recipe)
        log.info("sources: %r", graph)
        counts = {
            "kg_entities": graph.num_entities,
            "kg_relations": graph.num_relations,
            "kg_triples": graph.num_triples,
        }
        return counts, {"kg": {"files": graph.source, "memory_bytes": graph.nbytes()}}
