"""Load the authors' released client (``model/ckpt/Backbone.pth``) into :class:`ClientNetwork`.

The file is read with ``torch.load(weights_only=True)`` (no pickled code runs) and mapped key by key
(:func:`~src.papers.proface_c.networks.convert_authors_client`); every key must be accounted for.
"""

from __future__ import annotations

import torch

from src.networks.recognizers.checkpoints import read_checkpoint
from src.networks.recognizers.mobilefacenet import ours_to_treb1en_mobilefacenet
from src.papers.proface_c.networks import AUTHOR_BODY, ClientNetwork, convert_authors_client
from src.weights import resolve_spec


def load_authors_client(client: ClientNetwork, weights: str) -> ClientNetwork:
    """Load ``weights`` (``manifest:proface-c-client`` or a path to ``Backbone.pth``) into ``client``."""
    path = resolve_spec(weights)
    state, _ = read_checkpoint(path)
    try:
        converted = convert_authors_client(client, state)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    client.load_state_dict(converted, strict=True)
    return client


def ours_to_authors(key: str) -> str:
    """Our ClientNetwork key → the authors' ``ClientBackbone`` key (the inverse of the loading map)."""
    if key.startswith("keys."):
        return f"weight{int(key.split('.')[1]) + 1}"
    if key.startswith("interfaces."):
        _, index, rest = key.split(".", 2)
        return f"interface_{int(index) + 1}.{rest}"
    if key == "shuffle.permutations":
        return "channel_permutations"
    treb1en = ours_to_treb1en_mobilefacenet("stages." + key.removeprefix("body."))
    child, _, rest = treb1en.partition(".")
    authors = {theirs: ours for ours, theirs in AUTHOR_BODY.items()}
    return f"client_backbone.{authors[child]}.{rest}"


def authors_state_dict(client: ClientNetwork, permutation_rows: int = 784) -> dict[str, torch.Tensor]:
    """``client`` in the authors' ``Backbone.pth`` layout (export; and the stand-in file the tests load):
    their unused output head is filled with zeros and the permutation table padded to ``permutation_rows``
    rows with further random permutations, as theirs holds."""
    state = {ours_to_authors(k): v.detach().clone() for k, v in client.state_dict().items()}
    if client.shuffle is not None:
        perms = client.shuffle.permutations
        generator = torch.Generator().manual_seed(0)
        extra = [
            torch.randperm(perms.shape[1], generator=generator) for _ in range(permutation_rows - len(perms))
        ]
        state["channel_permutations"] = torch.cat([perms, *(p[None] for p in extra)])
    taps = client.body[3].expand.conv.out_channels
    head = {
        "client_backbone.output_layer.0.weight": torch.zeros(taps, 1, 7, 7),
        "client_backbone.output_layer.1.weight": torch.ones(taps),
        "client_backbone.output_layer.1.bias": torch.zeros(taps),
        "client_backbone.output_layer.1.running_mean": torch.zeros(taps),
        "client_backbone.output_layer.1.running_var": torch.ones(taps),
        "client_backbone.output_layer.1.num_batches_tracked": torch.tensor(0),
        "client_backbone.output_layer.3.weight": torch.zeros(512, taps),
        "client_backbone.output_layer.3.bias": torch.zeros(512),
        "client_backbone.output_layer.4.weight": torch.ones(512),
        "client_backbone.output_layer.4.bias": torch.zeros(512),
        "client_backbone.output_layer.4.running_mean": torch.zeros(512),
        "client_backbone.output_layer.4.running_var": torch.ones(512),
        "client_backbone.output_layer.4.num_batches_tracked": torch.tensor(0),
    }
    return {**state, **head}
