"""PRO-Face C: recognising obfuscated faces by client-side feature compensation (docs/papers/proface_c.md)."""
