"""FaceShield's networks as plain ``nn.Module`` s: encoder, SE (IB), decoder, generator, discriminators."""

from src.papers.faceshield.networks.decoder import UnetDecoder512
from src.papers.faceshield.networks.discriminators import IIDDiscriminator, MultiscaleDiscriminator
from src.papers.faceshield.networks.encoder import FaceShieldEncoder, encoder_input
from src.papers.faceshield.networks.generator import AII512
from src.papers.faceshield.networks.readout import ReadoutStatistics, readout_shapes
from src.papers.faceshield.networks.se import FaceShieldSE, SEOutput, attribute_features

__all__ = [
    "AII512",
    "FaceShieldEncoder",
    "FaceShieldSE",
    "IIDDiscriminator",
    "MultiscaleDiscriminator",
    "ReadoutStatistics",
    "SEOutput",
    "UnetDecoder512",
    "attribute_features",
    "encoder_input",
    "readout_shapes",
]
