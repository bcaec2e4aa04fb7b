"""Common base of the zoo networks: named stage modules, stage-feature capture/injection, checkpoint formats.

Every zoo recognizer names the submodules whose outputs are its stage features (``stage_paths``). Those
modules are ordinary ``nn.Module`` s, so features can be read *and replaced* with forward hooks:
:meth:`StagedRecognizer.forward_stages` captures them, :meth:`StagedRecognizer.inject` replaces them for
the duration of a ``with`` block (PRO-Face C adds client feature maps at the four stage ends of a frozen
server network). Checkpoint formats are declared per class and resolved by :meth:`key_mapping`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from torch import Tensor, nn

from src.networks.recognizers.base import FaceRecognizer
from src.networks.recognizers.checkpoints import NATIVE, KeyMapping, native_mapping

CHANNEL_ORDERS = ("RGB", "BGR")
StageFn = Callable[[Tensor], Tensor]


class StagedRecognizer(FaceRecognizer):
    """A :class:`FaceRecognizer` with named stage modules and published checkpoint formats.

    Subclasses set ``stage_names``, ``stage_paths`` (stage name → dotted submodule path),
    ``checkpoint_formats`` (published formats first, ``"native"`` last), ``conventions_source`` (where the
    declared input conventions come from) and implement :meth:`forward_features` and
    :meth:`_published_mapping`. ``channel_order`` may be overridden per instance (e.g. to reproduce a
    consumer that fed the other order).
    """

    stage_paths: ClassVar[dict[str, str]] = {}
    checkpoint_formats: ClassVar[tuple[str, ...]] = (NATIVE,)
    conventions_source: ClassVar[str] = ""

    def __init__(self, channel_order: str | None = None) -> None:
        super().__init__()
        if channel_order is not None:
            if channel_order not in CHANNEL_ORDERS:
                raise ValueError(
                    f"{type(self).__name__}: channel_order must be one of {CHANNEL_ORDERS}, "
                    f"got {channel_order!r}"
                )
            self.channel_order = channel_order

    # ----------------------------------------------------------------------------------------- stages
    def stage_modules(self) -> dict[str, nn.Module]:
        """Stage name → the module whose output is that stage's feature map (hook these to inject)."""
        return {name: self.get_submodule(self.stage_paths[name]) for name in self.stage_names}

    def forward_stages(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Raw embeddings of preprocessed input ``x`` plus every stage's output, in ``stage_names`` order.

        Active injections (:meth:`inject`) apply, and the returned features are the injected ones.
        """
        features: dict[str, Tensor] = {}

        def capture(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
            def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
                features[name] = output

            return hook

        handles = [
            module.register_forward_hook(capture(name)) for name, module in self.stage_modules().items()
        ]
        try:
            embeddings = self.forward_features(x)
        finally:
            for handle in handles:
                handle.remove()
        return embeddings, {name: features[name] for name in self.stage_names}

    @contextmanager
    def inject(self, functions: Mapping[str, StageFn]) -> Iterator[None]:
        """Within the block, stage ``name``'s output ``h`` is replaced by ``functions[name](h)``."""
        unknown = sorted(set(functions) - set(self.stage_names))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown stages {unknown}; stages: {list(self.stage_names)}"
            )
        modules = self.stage_modules()
        handles = []

        def replace(function: StageFn) -> Callable[[nn.Module, Any, Tensor], Tensor]:
            def hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
                return function(output)

            return hook

        try:
            for name, function in functions.items():
                handles.append(modules[name].register_forward_hook(replace(function)))
            yield
        finally:
            for handle in handles:
                handle.remove()

    # ------------------------------------------------------------------------------------ checkpoints
    def key_mapping(self, format: str) -> KeyMapping:
        """The key mapping of a declared checkpoint ``format``."""
        if format not in self.checkpoint_formats:
            raise ValueError(
                f"{type(self).__name__}: unknown checkpoint format {format!r}; "
                f"available: {', '.join(self.checkpoint_formats)}"
            )
        return native_mapping() if format == NATIVE else self._published_mapping(format)

    def _published_mapping(self, format: str) -> KeyMapping:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The declared interface plus checkpoint formats and the source of the conventions."""
        return {
            **super().describe(),
            "checkpoint_formats": list(self.checkpoint_formats),
            "conventions_source": self.conventions_source,
        }


def check_input_size(name: str, input_size: int, reductions: int) -> int:
    """Side of the final feature map for a square ``input_size`` after ``reductions`` stride-2 steps."""
    factor = 2**reductions
    if input_size < factor or input_size % factor:
        raise ValueError(f"{name}: input_size must be a positive multiple of {factor}, got {input_size}")
    return input_size // factor
