"""iFADIT's tables for ``python -m src.reproduce ifadit``: the demo (a stand-in identity encoder trained and
exported, then phases 1 and 2 on SyntheticFaces) and the paper's FFHQ rows (reconstructed training)."""

from pathlib import Path

from src.papers.preparations import network_export
from src.papers.registry import CostUse, RowCost, TableRow, register_table

#: where the demo's phases read the stand-in identity encoder (as ``src.papers.ifadit.demo`` writes it)
ENCODER_FILE = Path("demo_ifadit") / "identity_encoder.pth"


ENCODER = network_export("identity_encoder", ENCODER_FILE, "the stand-in identity encoder's network")
ENCODER_COST = CostUse("iFADIT attribute encoder E_attr (pSp GradualStyleEncoder)", 256, ("infer",))
GENERATOR_COST = CostUse("iFADIT generator G (StyleGAN2 FFHQ-256)", 256, ("infer",))
FLOW_COST = CostUse("iFADIT identity flow F (FrEIA, 4 AllInOneBlocks)", 256, ("forward", "inverse"))
PHASE1 = RowCost((ENCODER_COST, GENERATOR_COST), "ffhq")
PHASE2 = RowCost((ENCODER_COST, GENERATOR_COST, FLOW_COST), "ffhq")

register_table(
    "ifadit",
    "demo",
    [
        TableRow("identity_encoder", "ifadit/demo_identity_encoder"),
        TableRow("phase1", "ifadit/demo_phase1", prepare=(ENCODER,)),
        TableRow("phase2", "ifadit/demo_phase2", overrides=("model.disentangle_ckpt={best_ckpt:phase1}",)),
    ],
    description="stand-in identity encoder, phase 1 and phase 2 on SyntheticFaces (reconstructed training)",
)
register_table(
    "ifadit",
    "paper",
    [
        TableRow("phase1_ffhq", "ifadit/phase1_ffhq", cost=PHASE1),
        TableRow(
            "phase2_ffhq",
            "ifadit/phase2_ffhq",
            overrides=("model.disentangle_ckpt={best_ckpt:phase1_ffhq}",),
            cost=PHASE2,
        ),
        TableRow(
            "phase2_no_icl_ffhq",
            "ifadit/phase2_no_icl_ffhq",
            overrides=("model.disentangle_ckpt={best_ckpt:phase1_ffhq}",),
            cost=PHASE2,
        ),
    ],
    description="phase 1 and phase 2 (with and without identity compensation) on FFHQ 256 (reconstructed)",
    excluded={"ifadit/released_ffhq": "evaluates the released networks: a check of the port"},
)
