"""ProFace Lab: reproducible face-privacy and face-forgery experiments on PyTorch Lightning."""
