"""Frozen parts of the Inspector's later stages, read from the previous stage's checkpoint.

Each stage names the one checkpoint it builds on in its config, never by a guessed file name (the original
saved ``best_<date>.pth`` and loaded ``best.pth``). Module attribute names are the same in every stage, so a
checkpoint's ``state_dict`` prefixes say what it holds:

=================  ===============================  ==============================================
stage              reads (config key)               prefixes it needs from that checkpoint
=================  ===============================  ==============================================
2 reconstructor    ``model.detector_ckpt``          ``net.`` (any frame-detector checkpoint)
3 autothresh       ``model.reconstructor_ckpt``     ``net.``, ``reconstructor.``
4 corrector        ``model.autothresh_ckpt``        ``net.``, ``reconstructor.``, ``autothresh.``
=================  ===============================  ==============================================

Files are read tensors-only (:func:`src.utils.checkpoint_files.read_checkpoint`); a missing file, a
checkpoint of another stage or one whose shapes do not fit raises :class:`StageCheckpointError` naming the
stage, the config key and the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import nn

from src.utils.checkpoint_files import CheckpointError, check_state_dict_fits, read_checkpoint

#: the experiment whose checkpoint holds a part, for error messages
PRODUCED_BY = {
    "net": "inspector/stage1_detector (or any frame-detector run)",
    "reconstructor": "inspector/stage2_reconstructor",
    "autothresh": "inspector/stage3_autothresh",
}


class StageCheckpointError(CheckpointError):
    """A previous-stage checkpoint that is missing, of the wrong stage, or does not fit."""


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and no gradients for ``module`` (a frozen dependency of a later stage)."""
    module.requires_grad_(False)
    return module.eval()


def load_stage_parts(path: str | Path | None, stage: str, key: str, parts: Mapping[str, nn.Module]) -> str:
    """Load ``parts`` (prefix → module) strictly from the checkpoint at ``path``; returns the path read.

    ``stage`` names the stage being trained and ``key`` its config key, for the errors."""
    where = f"Inspector stage '{stage}' ({key})"
    if path is None or str(path).strip() in ("", "???"):
        raise StageCheckpointError(
            f"{where}: no checkpoint given; pass {key}=<best.ckpt of {PRODUCED_BY[list(parts)[-1]]}>"
        )
    path = Path(path)
    try:
        state = read_checkpoint(path).get("state_dict")
    except CheckpointError as err:
        raise StageCheckpointError(f"{where}: {err}") from err
    if not isinstance(state, Mapping):
        raise StageCheckpointError(f"{where}: checkpoint {path} has no Lightning 'state_dict'")
    for prefix, module in parts.items():
        own = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        if not own:
            raise StageCheckpointError(
                f"{where}: checkpoint {path} holds no '{prefix}.*' weights; give a checkpoint of "
                f"{PRODUCED_BY[prefix]}"
            )
        try:
            check_state_dict_fits(
                path, own, module.state_dict(), this_target=f"the {prefix} of stage '{stage}'"
            )
        except CheckpointError as err:
            raise StageCheckpointError(f"{where}: {err} (same network settings as that stage?)") from err
        module.load_state_dict(own, strict=True)
    return str(path)
