"""QA metrics (filled by the metrics work)."""
