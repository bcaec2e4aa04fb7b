"""The obfuscation baselines' tables for ``python -m src.reproduce obfuscation_baselines``: the demo (a
recognizer trained on SyntheticFaces judges blur, pixelate, mask and noise) and LFW judged by dlib."""

from src.papers.registry import TableRow, register_table

register_table(
    "obfuscation_baselines",
    "demo",
    [
        TableRow("recognizer", "demo/recognizer"),
        TableRow(
            "obfuscation_baselines",
            "demo/obfuscation_baselines",
            task="eval",
            overrides=("model.recognizer_ckpt={best_ckpt:recognizer}",),
        ),
    ],
    description="the shared obfuscators on SyntheticFaces, judged by the demo recognizer (make demo)",
)
register_table(
    "obfuscation_baselines",
    "paper",
    [TableRow("lfw_dlib", "obfuscation_baselines/lfw_dlib", task="eval")],
    description="blur, median, pixelate, mask and noise on LFW's 10 official folds, judged by dlib's ResNet",
)
