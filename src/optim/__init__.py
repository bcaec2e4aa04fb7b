"""Optimizers and learning-rate schedules that torch does not ship (SAM, linear decay after a plateau)."""
