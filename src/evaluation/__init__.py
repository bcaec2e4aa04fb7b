"""Evaluation protocols that combine metrics into table rows (identity retrieval/verification, ...)."""
