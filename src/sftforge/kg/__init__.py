"""Knowledge graphs: load triples (TSV/CSV/pipe/N-Triples/Turtle) into CSR arrays, walk them, and turn relation
paths into verified question-answer examples whose answer is the full answer set of the path."""

from sftforge.kg.graph import KnowledgeGraph
from sftforge.kg.load import detect_format, load_graph, read_labels
from sftforge.kg.paths import (
    PathExample,
    PathRejection,
    RelationPath,
    check_path,
    execute,
    find_shortcut,
    has_shortcut,
    path_example,
    paths_from_walks,
    with_paraphrase,
    witness_paths,
)
from sftforge.kg.verbalise import statement, verbalise
from sftforge.kg.walks import STRATEGIES, Walks, random_walks, start_nodes

__all__ = [
    "STRATEGIES",
    "KnowledgeGraph",
    "PathExample",
    "PathRejection",
    "RelationPath",
    "Walks",
    "check_path",
    "detect_format",
    "execute",
    "find_shortcut",
    "has_shortcut",
    "load_graph",
    "path_example",
    "paths_from_walks",
    "random_walks",
    "read_labels",
    "start_nodes",
    "statement",
    "verbalise",
    "with_paraphrase",
    "witness_paths",
]
