"""The face recognizer's table for ``python -m src.reproduce face_recognizer --table demo``: the demo
recognizer on SyntheticFaces. Its other experiment files are stand-in networks that privacy papers' demo
tables train first (rows of those tables)."""

from src.papers.registry import TableRow, register_table

register_table(
    "face_recognizer",
    "demo",
    [TableRow("recognizer", "demo/recognizer")],
    description="a small ArcFace IResNet on SyntheticFaces (synthetic data), tested on unseen identities",
    excluded={
        "ifadit/demo_identity_encoder": "stand-in identity encoder: a row of ifadit's demo table",
        "makeup_privacy/demo_recognizer": "stand-in recognizer: a row of makeup_privacy's demo table",
        "proface_c/demo_server": "stand-in server: a row of proface_c's demo table",
    },
)
