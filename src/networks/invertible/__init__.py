"""Generic invertible-network parts: Haar DWT/IWT, residual-dense sub-network, conditional affine coupling.

Shared by PRO-Face S (:mod:`src.papers.proface_s.networks`) and other keyed invertible models.
"""

from src.networks.invertible.coupling import AffineCouplingBlock, CouplingStack, SubnetFactory
from src.networks.invertible.dense import ResidualDenseBlock
from src.networks.invertible.haar import HaarDWT, HaarIWT, haar_dwt, haar_iwt, haar_matrix

__all__ = [
    "AffineCouplingBlock",
    "CouplingStack",
    "HaarDWT",
    "HaarIWT",
    "ResidualDenseBlock",
    "SubnetFactory",
    "haar_dwt",
    "haar_iwt",
    "haar_matrix",
]
