"""EG on a CPU: ``python -m src.papers.eg.demo [--fresh] [key=value ...]``.

Prepares the synthetic deepfake data of the detection demos (once; :mod:`src.preprocess.detection_demo`),
trains ``eg/demo_synthetic`` (EG's reconstructed objective on a small CNN, the offline dlib ResNet as the
frozen recognizer, real frames + online self-blends) and prints its numbers on the four synthetic
manipulations. ``python -m src.report detection_baselines eg fpg`` puts it beside the other detectors.
Numbers on synthetic data say nothing about real deepfakes.
"""

from src.preprocess.detection_demo import demo_main

if __name__ == "__main__":
    raise SystemExit(demo_main("eg/demo_synthetic", "reconstructed EG objective, small CNN, dlib teacher"))
