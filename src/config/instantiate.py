"""Build objects from config nodes with a ``_target_`` (a dotted import path).

``_partial_: true`` returns a ``functools.partial`` (optimizers and schedulers, completed by the
LightningModule with its parameters); ``_args_`` gives positional arguments. Nested nodes with a
``_target_`` are built first; nodes without one become plain dicts/lists.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.errors import ConfigError

TARGET, PARTIAL, ARGS = "_target_", "_partial_", "_args_"


def locate(path: str) -> Any:
    """Import ``package.module.Attr`` (longest importable module prefix, then attributes)."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and not module_name.startswith(exc.name) and exc.name != module_name:
                raise  # the module exists but one of its own imports is missing
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError as exc:
            raise ConfigError(f"cannot find '{path}': module '{module_name}' has no attribute path") from exc
        return obj
    raise ConfigError(f"cannot import _target_ '{path}'")


def _to_plain(node: Any) -> Any:
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def instantiate(node: Any, *args: Any, **overrides: Any) -> Any:
    """Recursively build ``node``; keyword ``overrides`` replace its arguments at the top level."""
    node = _to_plain(node)
    return _build(node, args, overrides, path="")


def _build(node: Any, args: tuple[Any, ...], overrides: dict[str, Any], path: str) -> Any:
    if isinstance(node, list):
        return [_build(item, (), {}, f"{path}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if TARGET not in node:
        return {k: _build(v, (), {}, f"{path}.{k}".lstrip(".")) for k, v in node.items()}
    kwargs = {
        k: _build(v, (), {}, f"{path}.{k}".lstrip("."))
        for k, v in node.items()
        if k not in (TARGET, PARTIAL, ARGS)
    }
    kwargs.update(overrides)
    positional = [*(_build(a, (), {}, path) for a in node.get(ARGS, [])), *args]
    target = locate(node[TARGET])
    if node.get(PARTIAL, False):
        return functools.partial(target, *positional, **kwargs)
    try:
        return target(*positional, **kwargs)
    except TypeError as exc:
        where = f" at '{path}'" if path else ""
        raise ConfigError(f"cannot build {node[TARGET]}{where}: {exc}") from exc
