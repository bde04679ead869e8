"""Custom Kedro datasets of the project (catalog entries name them by full module path)."""
