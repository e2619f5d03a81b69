"""Plaza server layer."""
