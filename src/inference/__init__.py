"""What served methods share below the papers: their face-level interface, rebuilding them from a checkpoint,
inputs decoded within limits, and face squares cut and pasted back."""
