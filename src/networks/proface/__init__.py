"""PRO-Face (ACM MM 2022) networks: the two-branch dense U-Net fusion network and its weight loader."""

from src.networks.proface.fusion_unet import ProFaceFusionNet, load_released_proface

__all__ = ["ProFaceFusionNet", "load_released_proface"]
