"""Random choice among obfuscators: PRO-Face S ``hybrid`` / ``hybridAll``.

The children and their settings: docs/papers/proface_s.md, "Obfuscators".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from src.obfuscators.base import Obfuscator, as_int, check_images, fresh_generator, register_obfuscator


@register_obfuscator
class RandomChoice(Obfuscator):
    """Apply one obfuscator chosen uniformly at random **per batch** (training), as PRO-Face S does.

    Training: the index is drawn with ``generator`` (or a fresh one from the global RNG), and the chosen child
    then draws its own per-sample strength with the same generator. The last choice is kept in
    ``last_index`` for logging. Evaluation: PRO-Face S evaluates each obfuscator separately, so eval mode
    needs ``eval_index`` (constructor argument or attribute) to name the child to use; without it ``forward``
    raises ``RuntimeError``. The children follow this module's train/eval mode.
    """

    name = "hybrid"

    def __init__(self, obfuscators: Sequence[Obfuscator], eval_index: int | None = None) -> None:
        super().__init__()
        who = type(self).__name__
        if isinstance(obfuscators, Obfuscator) or not isinstance(obfuscators, Sequence):
            raise ValueError(
                f"{who}: obfuscators must be a list of Obfuscator modules, got {type(obfuscators)}"
            )
        if len(obfuscators) == 0:
            raise ValueError(f"{who}: obfuscators must not be empty")
        for i, ob in enumerate(obfuscators):
            if not isinstance(ob, Obfuscator):
                raise ValueError(f"{who}: obfuscators[{i}] must be an Obfuscator, got {type(ob).__name__}")
        self.obfuscators = nn.ModuleList(obfuscators)
        self.eval_index = eval_index
        self.last_index: int | None = None

    @property
    def eval_index(self) -> int | None:
        """Index of the child used in eval mode (``None``: eval mode raises)."""
        return self._eval_index

    @eval_index.setter
    def eval_index(self, value: int | None) -> None:
        if value is not None:
            value = as_int(type(self).__name__, "eval_index", value, minimum=0)
            if value >= len(self.obfuscators):
                raise ValueError(
                    f"{type(self).__name__}: eval_index {value} out of range for "
                    f"{len(self.obfuscators)} obfuscators"
                )
        self._eval_index = value

    def choose(self, generator: torch.Generator) -> int:
        """Draw the index of the child to apply, uniformly over the children."""
        n = len(self.obfuscators)
        return int(torch.randint(0, n, (1,), generator=generator, device=generator.device).item())

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Obfuscate the batch with one child (random in training, ``eval_index`` in eval)."""
        images = check_images(images, type(self).__name__)
        if self.training:
            if generator is None:
                generator = fresh_generator()
            index = self.choose(generator)
        else:
            if self.eval_index is None:
                raise RuntimeError(
                    f"{type(self).__name__}: eval mode needs eval_index (which of the "
                    f"{len(self.obfuscators)} obfuscators "
                    f"{[ob.name for ob in self.obfuscators]} to evaluate); set `.eval_index = i` "
                    "or evaluate the obfuscators one by one"
                )
            index = self.eval_index
        self.last_index = index
        return self.obfuscators[index](images, generator)

    def draw_params(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Not defined for a random choice (the children have different parameters); use the children's."""
        raise NotImplementedError(
            f"{type(self).__name__} has no parameters of its own; use a child's draw_params"
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "obfuscators": [ob.describe() for ob in self.obfuscators],
            "eval_index": self.eval_index,
        }

    def extra_repr(self) -> str:
        return f"eval_index={self.eval_index}"
