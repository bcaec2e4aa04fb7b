"""Frame-level deepfake-detection baselines: Xception and EfficientNet-B4 (DeepfakeBench recipe) and SBI
(docs/papers/detection_baselines.md)."""
