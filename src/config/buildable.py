"""Which ``_target_`` strings may be built from files that came from outside the project.

A ``_target_`` is a dotted import path, so building a config node means importing a module and calling what
it names. That is fine for experiment files the user wrote (they are code, and keep the full freedom), but
not for files that arrive with a shared checkpoint or run directory: a crafted ``config.yaml`` or checkpoint
could name ``os.system`` with ``_args_: ["rm -rf ~"]``. Such *untrusted* configs may only reach:

* project objects registered as buildable — networks, recognizer builders, obfuscators, losses, DataModules
  and papers — with :func:`buildable` (DataModules, obfuscators and papers register through their base
  class or decorator);
* a few families of declared dependencies: the optimizers and learning-rate schedulers of ``torch.optim``,
  Lightning's callbacks and ``pytorch_lightning.Trainer``.

:func:`resolve_untrusted_target` never imports a module outside ``src`` unless the target belongs to one of
those families, and never imports anything for a refused target outside ``src``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from src.config.errors import ConfigError

PROJECT_PACKAGE = "src"
_T = TypeVar("_T", bound=Callable[..., Any])
_REGISTERED: set[Any] = set()  # the objects themselves (an id could be reused once freed)
_FORMER_TARGETS: dict[str, Any] = {}  # dotted paths a registered object had before it moved

# module -> (base class its members must derive from, human name); only public names of exactly these modules
_DEPENDENCY_FAMILIES: dict[str, tuple[str, str]] = {
    "torch.optim": ("torch.optim.Optimizer", "optimizer"),
    "torch.optim.lr_scheduler": ("torch.optim.lr_scheduler.LRScheduler", "learning-rate scheduler"),
    "pytorch_lightning.callbacks": ("pytorch_lightning.callbacks.Callback", "Lightning callback"),
}
_DEPENDENCY_TARGETS = frozenset({"pytorch_lightning.Trainer"})


class UntrustedTargetError(ConfigError):
    """A ``_target_`` in a file from outside the project that is not a registered buildable target."""


def buildable(obj: _T) -> _T:
    """Register a project class or factory as buildable from untrusted configs (usable as a decorator)."""
    _REGISTERED.add(obj)
    return obj


def formerly(*targets: str) -> Callable[[_T], _T]:
    """Decorator: ``obj`` was built from ``targets`` before it moved; configs naming them (old checkpoints,
    run directories, experiment files) still build it. Registers ``obj`` as buildable too."""

    def decorate(obj: _T) -> _T:
        for target in targets:
            existing = _FORMER_TARGETS.get(target)
            if existing is not None and existing is not obj:
                raise ValueError(f"former target '{target}' already stands for {existing!r}")
            _FORMER_TARGETS[target] = obj
        return buildable(obj)

    return decorate


def former_targets_of(obj: Any) -> tuple[str, ...]:
    """The dotted paths ``obj`` had before it moved (registered with :func:`formerly`)."""
    return tuple(sorted(target for target, known in _FORMER_TARGETS.items() if known is obj))


def former_target(target: str) -> Any | None:
    """The object a moved ``_target_`` now stands for (None when ``target`` never moved)."""
    return _FORMER_TARGETS.get(target)


def register_project_subclass(cls: type) -> None:
    """Register ``cls`` when it is defined in the project (for base classes' ``__init_subclass__``)."""
    if cls.__module__.split(".", 1)[0] == PROJECT_PACKAGE:
        buildable(cls)


def is_buildable(obj: Any) -> bool:
    """Whether ``obj`` was registered with :func:`buildable`."""
    try:
        return obj in _REGISTERED
    except TypeError:  # unhashable: never registered
        return False


def _import_attr(module_name: str, attributes: list[str]) -> Any:
    obj: Any = importlib.import_module(module_name)
    for attribute in attributes:
        obj = getattr(obj, attribute)
    return obj


def _resolve_project_target(target: str) -> Any | None:
    """The project object ``target`` names, importing only modules of the project package."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            return _import_attr(module_name, parts[split:])
        except ModuleNotFoundError as exc:
            if not (exc.name and module_name.startswith(exc.name)):
                raise  # a project module whose own dependency is missing: a real error, say so
        except AttributeError:
            return None
    return None


def _resolve_dependency_target(target: str) -> Any | None:
    """The object of a declared dependency family (optimizers, schedulers, callbacks, Trainer), else None."""
    module_name, _, name = target.rpartition(".")
    if target in _DEPENDENCY_TARGETS:
        return _import_attr(module_name, [name])
    family = _DEPENDENCY_FAMILIES.get(module_name)
    if family is None or not name.isidentifier() or name.startswith("_"):
        return None
    base_module, _, base_name = family[0].rpartition(".")
    base = _import_attr(base_module, [base_name])
    obj = getattr(importlib.import_module(module_name), name, None)
    return obj if isinstance(obj, type) and issubclass(obj, base) else None


def resolve_untrusted_target(target: Any, *, source: str, key: str) -> Any:
    """The object an untrusted ``_target_`` may build, else :class:`UntrustedTargetError` (file and key)."""
    if not isinstance(target, str) or not target.replace(".", "").replace("_", "").isalnum():
        raise UntrustedTargetError(
            f"{source}: refused to build {key} = {target!r}: a _target_ must be a dotted name"
        )
    obj = former_target(target)
    if obj is not None:
        return obj
    if target.split(".", 1)[0] == PROJECT_PACKAGE:
        obj = _resolve_project_target(target)
        obj = obj if obj is not None and is_buildable(obj) else None
    else:
        obj = _resolve_dependency_target(target)
    if obj is None:
        raise UntrustedTargetError(
            f"{source}: refused to build {key} = '{target}': it is not a registered buildable target "
            "(files from outside - checkpoints, run directories - may only build the project's registered "
            "networks, recognizers, obfuscators, losses, DataModules and papers, torch optimizers and "
            "schedulers, and Lightning callbacks; nothing was imported or run)"
        )
    return obj
