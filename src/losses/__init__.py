"""Training losses shared by the paper modules."""
