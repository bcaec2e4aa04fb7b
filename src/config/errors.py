"""Errors raised for bad configuration (unknown keys, experiments, groups, missing values)."""


class ConfigError(ValueError):
    """A configuration problem, with a message that names the key or file at fault."""
