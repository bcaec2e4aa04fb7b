"""Frame-level forgery detectors (binary real/fake classifiers): one interface, a registry, timm backbones."""

from src.networks.detectors import timm_backbones as _timm_backbones  # noqa: F401  (registers the zoo)
from src.networks.detectors.base import (
    DETECTORS,
    INPUT_NORMS,
    DetectorNet,
    build_detector_net,
    register_detector_net,
)

__all__ = ["DETECTORS", "INPUT_NORMS", "DetectorNet", "build_detector_net", "register_detector_net"]
