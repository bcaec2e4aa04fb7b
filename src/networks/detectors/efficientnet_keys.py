"""State-dict key mapping between lukemelas' ``efficientnet_pytorch`` and timm's ``tf_efficientnet_b4``.

Why: the released deepfake-detector checkpoints built on EfficientNet-B4 (EG's ``EG_FF++(raw).tar``, SBI's
weights) store the network as ``net.<key>`` in the layout of the ``efficientnet_pytorch`` package
(github.com/lukemelas/EfficientNet-PyTorch, 0.7.1), while this project builds the network with timm
(``tf_efficientnet_b4``: TensorFlow "same" padding and BatchNorm eps 1e-3, numerically the same network).
The two layouts hold the same tensors with the same shapes; only the names differ:

==============================================  =============================================
efficientnet_pytorch                            timm
==============================================  =============================================
``_conv_stem``, ``_bn0``                        ``conv_stem``, ``bn1``
``_conv_head``, ``_bn1``                        ``conv_head``, ``bn2``
``_fc``                                         ``classifier``
``_blocks.{i}`` (flat index over all blocks)    ``blocks.{stage}.{j}`` (``B4_BLOCKS`` per stage)
==============================================  =============================================

Inside a block, stage 0 is timm's ``DepthwiseSeparableConv`` (expansion ratio 1, so lukemelas has no
``_expand_conv``/``_bn0`` there) and every later stage an ``InvertedResidual``; see ``_DS_BLOCK`` and
``_IR_BLOCK``. The layouts were read from timm 1.0.31's ``tf_efficientnet_b4`` and efficientnet_pytorch
0.7.1's ``EfficientNet.from_name("efficientnet-b4")`` state dicts; ``tests/test_efficientnet_keys.py``
checks that the converted weights give the same logits in both implementations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import Tensor

# Blocks per stage of EfficientNet-B4 (timm: ``[len(s) for s in model.blocks]``; 32 blocks in all).
B4_BLOCKS: tuple[int, ...] = (2, 4, 4, 6, 6, 8, 2)

_CONV = frozenset({"weight"})
_LINEAR = frozenset({"weight", "bias"})
_BN = frozenset({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})

# lukemelas module name -> (timm module name, allowed tensor names).
_TOP: dict[str, tuple[str, frozenset[str]]] = {
    "_conv_stem": ("conv_stem", _CONV),
    "_bn0": ("bn1", _BN),
    "_conv_head": ("conv_head", _CONV),
    "_bn1": ("bn2", _BN),
    "_fc": ("classifier", _LINEAR),
}
# Stage 0: depthwise-separable blocks (no expansion convolution).
_DS_BLOCK: dict[str, tuple[str, frozenset[str]]] = {
    "_depthwise_conv": ("conv_dw", _CONV),
    "_bn1": ("bn1", _BN),
    "_se_reduce": ("se.conv_reduce", _LINEAR),
    "_se_expand": ("se.conv_expand", _LINEAR),
    "_project_conv": ("conv_pw", _CONV),
    "_bn2": ("bn2", _BN),
}
# Stages 1 and later: inverted-residual (MBConv) blocks.
_IR_BLOCK: dict[str, tuple[str, frozenset[str]]] = {
    "_expand_conv": ("conv_pw", _CONV),
    "_bn0": ("bn1", _BN),
    "_depthwise_conv": ("conv_dw", _CONV),
    "_bn1": ("bn2", _BN),
    "_se_reduce": ("se.conv_reduce", _LINEAR),
    "_se_expand": ("se.conv_expand", _LINEAR),
    "_project_conv": ("conv_pwl", _CONV),
    "_bn2": ("bn3", _BN),
}


def _inverse(table: dict[str, tuple[str, frozenset[str]]]) -> dict[str, tuple[str, frozenset[str]]]:
    return {timm: (luke, leaves) for luke, (timm, leaves) in table.items()}


_TOP_INV, _DS_INV, _IR_INV = _inverse(_TOP), _inverse(_DS_BLOCK), _inverse(_IR_BLOCK)


def _rename(
    module: str, leaf: str, table: dict[str, tuple[str, frozenset[str]]], key: str
) -> tuple[str, str]:
    """``(new module, leaf)`` from ``table``; ``KeyError`` naming ``key`` for an unknown module or tensor."""
    if module not in table or leaf not in table[module][1]:
        raise KeyError(f"unknown EfficientNet key: {key!r}")
    return table[module][0], leaf


def _stage_of(index: int, blocks_per_stage: tuple[int, ...], key: str) -> tuple[int, int]:
    """The flat block index as ``(stage, index within stage)``."""
    start = 0
    for stage, count in enumerate(blocks_per_stage):
        if index < start + count:
            return stage, index - start
        start += count
    raise KeyError(f"unknown EfficientNet key: {key!r} (block {index} of {start})")


def _split(key: str) -> tuple[list[str], str]:
    *path, leaf = key.split(".")
    if not path:
        raise KeyError(f"unknown EfficientNet key: {key!r}")
    return path, leaf


def lukemelas_to_timm(key: str, blocks_per_stage: tuple[int, ...] = B4_BLOCKS) -> str:
    """The timm name of an ``efficientnet_pytorch`` state-dict key; ``KeyError`` if it is not one."""
    path, leaf = _split(key)
    if path[0] != "_blocks":
        module, leaf = _rename(".".join(path), leaf, _TOP, key)
        return f"{module}.{leaf}"
    if len(path) != 3 or not path[1].isdigit():
        raise KeyError(f"unknown EfficientNet key: {key!r}")
    stage, j = _stage_of(int(path[1]), blocks_per_stage, key)
    module, leaf = _rename(path[2], leaf, _DS_BLOCK if stage == 0 else _IR_BLOCK, key)
    return f"blocks.{stage}.{j}.{module}.{leaf}"


def timm_to_lukemelas(key: str, blocks_per_stage: tuple[int, ...] = B4_BLOCKS) -> str:
    """The ``efficientnet_pytorch`` name of a timm ``tf_efficientnet_*`` key; ``KeyError`` if not one."""
    path, leaf = _split(key)
    if path[0] != "blocks":
        module, leaf = _rename(".".join(path), leaf, _TOP_INV, key)
        return f"{module}.{leaf}"
    if len(path) < 4 or not (path[1].isdigit() and path[2].isdigit()):
        raise KeyError(f"unknown EfficientNet key: {key!r}")
    stage, j = int(path[1]), int(path[2])
    if stage >= len(blocks_per_stage) or j >= blocks_per_stage[stage]:
        raise KeyError(f"unknown EfficientNet key: {key!r} (no block {stage}.{j})")
    module, leaf = _rename(".".join(path[3:]), leaf, _DS_INV if stage == 0 else _IR_INV, key)
    return f"_blocks.{sum(blocks_per_stage[:stage]) + j}.{module}.{leaf}"


def _convert(
    state: Mapping[str, Tensor],
    rename: Callable[[str, tuple[int, ...]], str],
    strip: str,
    add: str,
    blocks: tuple[int, ...],
    what: str,
) -> dict[str, Tensor]:
    """``state`` with ``strip`` removed from and ``add`` put before each renamed key; ``ValueError`` lists
    every key that is outside ``strip`` or that ``rename`` refuses."""
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        if not key.startswith(strip):
            unknown.append(key)
            continue
        try:
            out[add + rename(key[len(strip) :], blocks)] = value
        except KeyError:
            unknown.append(key)
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise ValueError(f"{len(unknown)} key(s) are not {what} state-dict keys (prefix {strip!r}): {shown}")
    return out


def convert_lukemelas_state_dict(
    state: Mapping[str, Tensor], prefix: str = "", blocks_per_stage: tuple[int, ...] = B4_BLOCKS
) -> dict[str, Tensor]:
    """An ``efficientnet_pytorch`` state dict whose keys all start with ``prefix`` (e.g. ``"net."``) as a timm
    state dict (prefix removed, same tensors). Every key must convert: ``ValueError`` lists those that don't,
    including keys outside ``prefix``."""
    return _convert(state, lukemelas_to_timm, prefix, "", blocks_per_stage, "efficientnet_pytorch")


def to_lukemelas_state_dict(
    state: Mapping[str, Tensor], prefix: str = "", blocks_per_stage: tuple[int, ...] = B4_BLOCKS
) -> dict[str, Tensor]:
    """The inverse of ``convert_lukemelas_state_dict``: a timm state dict in ``efficientnet_pytorch`` names,
    each prefixed by ``prefix``. ``ValueError`` lists the keys that are not timm EfficientNet keys."""
    return _convert(state, timm_to_lukemelas, "", prefix, blocks_per_stage, "timm EfficientNet")
