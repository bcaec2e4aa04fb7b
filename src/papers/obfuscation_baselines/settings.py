"""The obfuscation baselines' tiny test settings."""

from __future__ import annotations

from src.papers.registry import TinySettings, register_tiny_settings

register_tiny_settings(
    "obfuscation_baselines",
    TinySettings(
        experiments={
            # dlib chips are 150 px; one batch holds every pair image (the official pairs need all of them)
            "obfuscation_baselines/lfw_dlib": (
                "datamodule.image_dir=lfw",
                "datamodule.image_size=150",
                "datamodule.batch_size=16",
            ),
        },
        # the real dlib network on the real LFW pair layout: tests/test_obfuscation_baselines.py runs this
        # experiment in full by default, so its fast_dev_run repeat is a slow test
        slow=("obfuscation_baselines/lfw_dlib",),
    ),
)
