"""FaceShield's training losses as plain functions: Stage I (L_FSE) and Stage II (LSGAN, IID, L_G).

See ``docs/papers/faceshield.md``, "Losses".
"""

from src.papers.faceshield.losses.adversarial import (
    iid_adversarial_loss,
    iid_detector_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from src.papers.faceshield.losses.fse import FSELosses, fse_loss, identity_reconstruction_loss
from src.papers.faceshield.losses.independence import angle_loss, hsic, hsic_loss, layer_angle
from src.papers.faceshield.losses.irc import (
    GeneratorLosses,
    ICLLosses,
    feature_reconstruction_loss,
    generator_loss,
    identity_contrastive_loss,
)

__all__ = [
    "FSELosses",
    "GeneratorLosses",
    "ICLLosses",
    "angle_loss",
    "feature_reconstruction_loss",
    "fse_loss",
    "generator_loss",
    "hsic",
    "hsic_loss",
    "identity_contrastive_loss",
    "identity_reconstruction_loss",
    "iid_adversarial_loss",
    "iid_detector_loss",
    "layer_angle",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
]
