"""Prefect flows: export, import, migrate (and verify, sync later); each runnable with `python -m`."""
