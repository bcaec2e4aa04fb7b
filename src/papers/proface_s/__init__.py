"""PRO-Face S (IEEE TCSVT 2023): keyed, reversible face anonymization (docs/papers/proface_s.md)."""
