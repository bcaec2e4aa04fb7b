"""Building blocks for DataModules that are not DataModules themselves (renderers, parsers, samplers)."""
