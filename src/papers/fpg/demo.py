"""FPG on a CPU: ``python -m src.papers.fpg.demo [--fresh] [key=value ...]``.

Prepares the synthetic deepfake data of the detection demos (once; :mod:`src.preprocess.detection_demo`),
trains ``fpg/demo_synthetic`` (online shape and magnitude refinement and feature separation on a small
CNN; no quality term, its teacher's weights are not shipped) and prints its numbers on the four synthetic
manipulations. ``python -m src.report detection_baselines eg fpg`` puts it beside the other detectors.
Numbers on synthetic data say nothing about real deepfakes.
"""

from src.preprocess.detection_demo import demo_main

if __name__ == "__main__":
    raise SystemExit(demo_main("fpg/demo_synthetic", "FPG refinement + separation, small CNN"))
