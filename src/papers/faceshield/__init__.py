"""FaceShield (DP face protection by identity-bottleneck face swapping): ``docs/papers/faceshield.md``."""
