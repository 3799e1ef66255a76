"""Sources: read documents, chunk them, rank the chunks for the task (data search)."""
