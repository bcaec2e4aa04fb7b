"""Makeup-privacy: adversarial makeup transfer against face recognition (docs/papers/makeup_privacy.md)."""
