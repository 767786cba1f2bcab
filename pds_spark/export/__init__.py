"""Transfer of a project's extract to its workspace: Parquet with a manifest, or PostgreSQL and
Oracle tables typed from the catalogue, swapped in whole, checked at arrival."""
