"""Plaza domain layer."""
