"""Face-swap networks used as (frozen) obfuscators: SimSwap's 224 generator and its ArcFace identity network,
and FaceShifter's AEI-Net (256) with TreB1eN's IR-SE-50 identity network.

A swap network here is a module ``(faces in [0, 1], target identity latents) -> swapped faces in [0, 1]``
plus an identity encoder ``target faces in [0, 1] -> latents``; :class:`src.obfuscators.face_swap.FaceSwap`
turns such a pair into a seeded obfuscator. Published weights load with the published key names
(:func:`load_simswap_generator`), and SimSwap's pickled ArcFace is read without running its code
(:func:`load_simswap_arcface`, :class:`RestrictedUnpickler`); see :mod:`src.networks.face_swap.simswap`.
FaceShifter's ``G_latest.pth`` loads strictly into :class:`AEINet` (:func:`load_faceshifter_generator`); its
identity network is the zoo's IR-SE-50 (:func:`load_faceshifter_arcface`); see
:mod:`src.networks.face_swap.faceshifter`.
"""

from src.networks.face_swap.faceshifter import (
    FACESHIFTER_ARCFACE_WEIGHTS,
    FACESHIFTER_GENERATOR_WEIGHTS,
    FACESHIFTER_ID_SIZE,
    FACESHIFTER_IMAGE_SIZE,
    FACESHIFTER_PARAMETERS,
    AEINet,
    FaceShifterIdentityEncoder,
    FaceShifterSwapper,
    build_faceshifter_arcface,
    faceshifter_parameter_count,
    load_faceshifter_arcface,
    load_faceshifter_generator,
)
from src.networks.face_swap.simswap import (
    ARCFACE_WEIGHTS,
    GENERATOR_WEIGHTS,
    SIMSWAP_ID_SIZE,
    SIMSWAP_IMAGE_SIZE,
    ArcFaceConfig,
    PickledNetwork,
    PickledObject,
    RestrictedUnpickler,
    SimSwapArcFace,
    SimSwapGenerator,
    SimSwapIdentityEncoder,
    SimSwapSwapper,
    find_pickled_network,
    generator_parameter_count,
    load_restricted,
    load_simswap_arcface,
    load_simswap_generator,
    read_pickled_network,
    restricted_pickle_module,
)

__all__ = [
    "ARCFACE_WEIGHTS",
    "FACESHIFTER_ARCFACE_WEIGHTS",
    "FACESHIFTER_GENERATOR_WEIGHTS",
    "FACESHIFTER_ID_SIZE",
    "FACESHIFTER_IMAGE_SIZE",
    "FACESHIFTER_PARAMETERS",
    "GENERATOR_WEIGHTS",
    "SIMSWAP_ID_SIZE",
    "SIMSWAP_IMAGE_SIZE",
    "AEINet",
    "ArcFaceConfig",
    "FaceShifterIdentityEncoder",
    "FaceShifterSwapper",
    "PickledNetwork",
    "PickledObject",
    "RestrictedUnpickler",
    "SimSwapArcFace",
    "SimSwapGenerator",
    "SimSwapIdentityEncoder",
    "SimSwapSwapper",
    "build_faceshifter_arcface",
    "faceshifter_parameter_count",
    "find_pickled_network",
    "generator_parameter_count",
    "load_faceshifter_arcface",
    "load_faceshifter_generator",
    "load_restricted",
    "load_simswap_arcface",
    "load_simswap_generator",
    "read_pickled_network",
    "restricted_pickle_module",
]
