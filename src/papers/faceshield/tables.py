"""FaceShield's tables for ``python -m src.reproduce faceshield``: the demo (the ε sweep on SyntheticFaces
with untrained networks) and the paper's rows (both training stages, the ε sweep of three samplers,
baselines)."""

from src.papers.registry import CostUse, RowCost, TableRow, register_table

NETWORK = "FaceShield (encoder + SE + decoder + AII generator)"
SAMPLERS = ("faceshield_repo", "purkayastha", "vmf")
EPSILONS = ("eps0p1", "eps1", "eps5", "eps10", "eps30")
TRAIN = RowCost((CostUse(NETWORK, 512, ("extract", "render")),), "ffhq")
SWEEP = RowCost((CostUse(NETWORK, 512, ("extract", "render")),), "celeba_hq")

register_table(
    "faceshield",
    "demo",
    [TableRow("demo_synthetic", "faceshield/demo_synthetic", task="eval")],
    description="the ε sweep (3 samplers x 5 ε) and baselines on SyntheticFaces, untrained networks",
)
register_table(
    "faceshield",
    "paper",
    [
        TableRow("stage1_fse", "faceshield/stage1_fse", cost=TRAIN),
        TableRow(
            "stage2_irc",
            "faceshield/stage2_irc",
            overrides=("model.extractor_ckpt={best_ckpt:stage1_fse}",),
            cost=TRAIN,
        ),
        *(
            TableRow(f"{sampler}/{eps}", f"faceshield/sweep/{sampler}/{eps}", task="eval", cost=SWEEP)
            for sampler in SAMPLERS
            for eps in EPSILONS
        ),
        *(
            TableRow(f"baseline/{name}", f"faceshield/baselines/{name}", task="eval")
            for name in ("blur", "pixelate", "dp_pix")
        ),
    ],
    description="stages I and II on FFHQ 512 px; the ε sweep (released networks) and baselines on CelebA-HQ",
)
