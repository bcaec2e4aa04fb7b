"""ProFace Lab's web portal: upload a photo or short video, protect / recover / detect, see and download the
result (``python -m src.serving.portal``, ``make serve``; ``docs/serving.md``)."""

from src.serving.portal.app import create_app
from src.serving.portal.settings import PortalSettings

__all__ = ["PortalSettings", "create_app"]
