"""FPG: a deepfake detector trained with forgery perception guidance — online refinement of its self-blended
fakes from its own Grad-CAM and confidence, a feature-separation loss and a face-quality regression
(docs/papers/fpg.md)."""
