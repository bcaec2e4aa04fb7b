"""Plain data types shared by the data and the metrics layers (the lowest floor above config)."""
