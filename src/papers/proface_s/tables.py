"""PRO-Face S's tables for ``python -m src.reproduce proface_s``: the demo on SyntheticFaces and the paper's
CelebA rows (the three obfuscator pools it trains with)."""

from src.papers.registry import CostUse, RowCost, TableRow, register_table

COST = RowCost((CostUse("PRO-Face S", 256, ("protect", "recover")),), "celeba")

register_table(
    "proface_s",
    "demo",
    [TableRow("demo_synthetic", "proface_s/demo_synthetic")],
    description="PRO-Face S on SyntheticFaces at 64 px (a few hundred steps)",
)
register_table(
    "proface_s",
    "paper",
    [
        TableRow("hybrid_all_celeba", "proface_s/hybrid_all_celeba", cost=COST),
        TableRow("hybrid_all_celeba_obfs", "proface_s/hybrid_all_celeba_obfs", cost=COST),
        TableRow("hybrid_celeba", "proface_s/hybrid_celeba", cost=COST),
    ],
    description="CelebA at 256 px, trained with each obfuscator pool, then tested",
)
