"""What a recipe's `sources` section can hold, one module per kind (documents, a knowledge graph, seed tasks); each
registers itself with `base.register`, and `recipe.py` builds the `sources` section from the registry."""
