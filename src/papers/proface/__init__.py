"""PRO-Face (ACM MM 2022): obfuscated faces that stay recognizable to machines (docs/papers/proface.md)."""
