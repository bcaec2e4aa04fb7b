"""EG: deepfake detection with self-blended artifacts guided by facial-embedding discrepancy (TCSVT 2025);
docs/papers/eg.md."""
