"""Classical obfuscation baselines judged by a recognizer (docs/papers/obfuscation_baselines.md)."""
