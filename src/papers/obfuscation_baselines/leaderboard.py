"""How the obfuscation baselines enter the cross-paper leaderboard (``python -m src.leaderboard``): blur,
pixelate, mask, median and noise in their served configuration, and DP-Pix at three ε spanning its range
(0.1, 1 and 10; cells of 16 px, m = 1). None needs a checkpoint, so the paper has no ``leaderboard`` table.
"""

from __future__ import annotations

from src.papers.registry import Contender, register_contenders

PAPER = "obfuscation_baselines"
#: the fixed obfuscations, each in its served (default) configuration
FIXED = ("blur", "pixelate", "mask", "median", "noise")
#: the DP-Pix ε of the leaderboard (one release each; the served default is 0.5)
DP_PIX_EPSILONS = (0.1, 1.0, 10.0)


def _eps_name(epsilon: float) -> str:
    """``eps=1`` for 1.0, ``eps=0.1`` for 0.1 (no trailing ``.0``)."""
    return f"eps={epsilon:g}"


register_contenders(
    PAPER,
    *(Contender(name) for name in FIXED),
    *(Contender("dp_pix", _eps_name(eps), {"epsilon": eps}) for eps in DP_PIX_EPSILONS),
)
