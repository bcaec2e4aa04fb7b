"""Building blocks of the DataModules: renderers, file readers, metadata parsers, datasets, shared bases."""
