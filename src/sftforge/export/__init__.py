"""Export formats and the dataset card."""
