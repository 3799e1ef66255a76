"""Audience-genre pairs (`task.audiences` crossed with `task.genres`): which pair each work item is written for.

Pairs are drawn in turn over the work order (item i gets pair i mod n), so every pair is drawn equally often
(within one) wherever generation stops, and a passage's `per_passage` items, which are consecutive, get
different pairs. `audience_figures` gives the manifest's figures per audience. Pure: the words that put a pair
into a prompt or a record are templates (`audience.j2`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sftforge.config import BLOOM_LEVELS, Audience, Genre
from sftforge.lib.bloom import bloom_level, question_of
from sftforge.lib.diversity import diversity

if TYPE_CHECKING:
    from sftforge.recipe import Task


@dataclass(frozen=True, slots=True)
class Pair:
    """One audience-genre pair; either side may be absent (a recipe with audiences only, or genres only)."""

    audience: Audience | None
    genre: Genre | None

    @property
    def audience_name(self) -> str | None:
        return self.audience.name if self.audience is not None else None

    @property
    def genre_name(self) -> str | None:
        return self.genre.name if self.genre is not None else None

    @property
    def bloom(self) -> str | None:
        """The Bloom level's name (remember ... create) the audience asks exercises at, if any."""
        level = self.audience.level if self.audience is not None else None
        return BLOOM_LEVELS[level - 1] if level else None


def pairs(audiences: list[Audience], genres: list[Genre]) -> list[Pair]:
    """Every audience with every genre, audience-major; empty when the recipe names neither."""
    if not audiences and not genres:
        return []
    readers: list[Audience | None] = list(audiences) or [None]
    styles: list[Genre | None] = list(genres) or [None]
    return [Pair(a, g) for a in readers for g in styles]


def pair_for(drawn: list[Pair], index: int) -> Pair | None:
    """The pair of the work item at `index` in the work order (None when the recipe names no audiences)."""
    return drawn[index % len(drawn)] if drawn else None


def asked_levels(task: Task) -> dict[str, int]:
    """The Bloom level each audience asks exercises at (only exercises have one)."""
    if task.type != "exercise":
        return {}
    return {a.name: a.level for a in task.audiences if a.level is not None}


def audience_figures(
    rows: list[tuple[str | None, str | None, str, str]], levels: dict[str, int], lang: str, seed: int = 0
) -> dict[str, dict]:
    """Per audience (and `(all)`): records, records per genre, the diversity of the replies, and for audiences
    with a Bloom `level` the level measured on each record's question (`lib/bloom.py`): its mean and the share that
    matches (`level_agreement`). `rows` are (audience, genre, user turn, reply) of the records made."""
    groups: dict[str, list[tuple[str | None, str | None, str, str]]] = {"(all)": list(rows)}
    for row in rows:
        groups.setdefault(row[0] or "(none)", []).append(row)
    out: dict[str, dict] = {}
    for name, members in groups.items():
        fig: dict = {
            "records": len(members),
            "genres": dict(Counter(genre or "(none)" for _, genre, _, _ in members)),
            "replies": diversity([reply for *_, reply in members], seed),
        }
        level = levels.get(name)
        if level is not None and members:
            measured = [bloom_level(question_of(user), lang) for _, _, user, _ in members]
            fig |= {
                "level": level,
                "measured_level": round(sum(measured) / len(measured), 2),
                "level_agreement": round(sum(m == level for m in measured) / len(measured), 3),
            }
        out[name] = fig
    return out
