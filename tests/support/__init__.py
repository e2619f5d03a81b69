"""Helpers shared by test packages (imported as `support.*`; tests/ is on sys.path)."""
