"""Storage: table maintenance and retention, a project's data destroyed at its end, what the
warehouse holds on disk."""
