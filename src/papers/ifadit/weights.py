"""Load iFADIT's released files by name, with explicit key maps (the authors copied tensors by position).

- ``ifadit-identity-flow`` (``G_net_ffhq15INN607_20_202528.pth``) → :class:`IdentityFlow`: FrEIA's
  ``SequenceINN`` keys ``module_list.{i}.*`` become ``inn.module_list.{i}.*`` (:data:`FLOW_KEYS`);
- ``ifadit-latent-mapper`` (``mlp_best.pth``) → :class:`LatentMapper` and ``ifadit-compensation`` (the ICL
  ``FusionMapper10`` file) → :class:`IdentityCompensation`: ``model.{i}.*`` unchanged (:data:`SAME_KEYS`);
- ``ifadit-attribute-encoder`` (``attr_best.pth``) → :class:`AttributeEncoder`: pSp names
  (:func:`convert_psp_state_dict`);
- ``stylegan2-ffhq-256`` (``550000.pt``) → :class:`StyleGAN2Generator`: rosinality's ``g_ema``, unchanged.

Every file is read with ``torch.load(weights_only=True)``; a missing, unexpected or mis-shaped key is an
error naming it (docs/papers/ifadit.md, "Weights").
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from src.networks.recognizers.checkpoints import KeyMapping, convert_state_dict, read_checkpoint
from src.papers.ifadit.encoders import AttributeEncoder, convert_psp_state_dict, ir_se50_mapping
from src.papers.ifadit.stylegan2 import StyleGAN2Generator, g_ema_state_dict
from src.weights import resolve_spec

#: FrEIA's SequenceINN state dict (the authors' ``G_net``) inside our IdentityFlow
FLOW_KEYS = KeyMapping(
    "freia-sequence-inn",
    lambda key: f"inn.{key}",
    lambda key: key.removeprefix("inn."),
    "FrEIA SequenceINN state_dict (iFADIT models/id_transformer/inn.py bulid_models)",
)
#: the authors' MLP modules keep their names (``model.{i}.weight`` / ``.bias``)
SAME_KEYS = KeyMapping("same", lambda key: key, lambda key: key, "the authors' module state_dict, same names")


def load_into(network: nn.Module, weights: str | Path) -> nn.Module:
    """Load ``weights`` (``manifest:<entry>`` or a path) into an iFADIT network, by its key map."""
    path = resolve_spec(str(weights))
    if isinstance(network, StyleGAN2Generator):
        network.load_state_dict(g_ema_state_dict(path), strict=True)
        return network
    state, _ = read_checkpoint(path)
    if isinstance(network, AttributeEncoder):
        try:
            converted = convert_psp_state_dict(network, state)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    else:
        mapping = FLOW_KEYS if any(k.startswith("inn.") for k in network.state_dict()) else SAME_KEYS
        converted, *_ = convert_state_dict(network, state, mapping, str(path))
    network.load_state_dict(converted, strict=True)
    return network


def authors_file_state(network: nn.Module) -> dict:
    """What the authors' file for ``network`` holds, in their layout (stand-in files for tests and demos):
    ``{"g_ema": ...}`` for the generator, a pSp ``{"state_dict": encoder.* + latent_avg}`` for the attribute
    encoder, FrEIA's ``module_list.*`` for the flow, the module's own names for the MLPs."""
    state = network.state_dict()
    if isinstance(network, StyleGAN2Generator):
        return {"g_ema": dict(state)}
    if isinstance(network, AttributeEncoder):
        mapping = ir_se50_mapping()
        psp = {
            f"encoder.{mapping.to_theirs(k) if k.startswith(('stem.', 'stages.')) else k}": v
            for k, v in state.items()
            if k != "latent_avg"
        }
        return {"state_dict": {**psp, "latent_avg": state["latent_avg"].clone()}}
    if any(k.startswith("inn.") for k in state):
        return {FLOW_KEYS.to_theirs(k): v for k, v in state.items()}
    return dict(state)
