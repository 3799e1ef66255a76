"""`import`: the examples of `sources.datasets`, most relevant first (the sources stage's data search), for this
generator's share of the target. Next to other generators it mixes found and generated data by shares ("take the
2,000 most relevant examples we have, generate 1,000 more"); alone, it makes a curation recipe (import, features,
clean, select, train, evaluate, export) with no LLM at all.

Records keep the task type of the recipe and their lineage from the import: the file, the row and the dataset's
own id (`SourceRef(kind="row")`). Waves are fixed slices of the ranking, so a resumed run skips those committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from sftforge.config import GeneratorConfig
from sftforge.generate.base import Generator, Session, Wave, register
from sftforge.sample import table_to_records
from sftforge.storage import imported_batches, read_ranking

if TYPE_CHECKING:
    from sftforge.recipe import Recipe

WAVE = 10_000  # examples per committed shard


class ImportConfig(GeneratorConfig):
    """Examples of sources.datasets, most relevant first (sources.search)."""

    name: Literal["import"] = "import"


@register
class Import(Generator):
    name = "import"
    Config = ImportConfig
    tasks = {}
    any_task = True
    requires = ("datasets",)
    replays = False
    progress_label = "import"

    @classmethod
    def uses_llm(cls, config: GeneratorConfig, recipe: Recipe) -> bool:
        return False

    @classmethod
    def notes(cls, figures: dict[str, object]) -> str:
        return f"{figures.get('available', 0)} examples found by the data search"

    def run(self, session: Session) -> Iterator[Wave]:
        ranking = read_ranking(self.job.run)
        self.figures["available"] = len(ranking)
        rows = ranking[: session.count]
        for k, table in enumerate(imported_batches(self.job.run, rows, WAVE)):
            key = f"import:{k}"
            if key in session.done:
                continue
            records = [
                replace(r, lineage=replace(r.lineage, round=session.round)) if r.lineage else r
                for r in table_to_records(table)
            ]
            yield Wave([key], records)
