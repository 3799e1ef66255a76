"""The self-contained HTML report of a run: collect the figures (collect.py), project the embeddings
(projection.py), and render one HTML file with its data, styles and charts inline (render.py)."""
