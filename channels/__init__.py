"""Plaza channels layer."""
