"""Face recognizer training and identity evaluation (docs/papers/face_recognizer.md)."""
