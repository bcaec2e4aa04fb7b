"""Offline preprocessing tools (detect + align image folders: ``python -m src.preprocess.align``)."""
