"""Face-recognizer zoo: one interface (:class:`FaceRecognizer`) over many published architectures."""

from src.networks.recognizers.base import RECOGNIZERS, FaceRecognizer, build_recognizer, register_recognizer

__all__ = ["RECOGNIZERS", "FaceRecognizer", "build_recognizer", "register_recognizer"]
