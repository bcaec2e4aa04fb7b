"""Build objects from config nodes with a ``_target_`` (a dotted import path).

``_partial_: true`` returns a ``functools.partial`` (optimizers and schedulers, completed by the
LightningModule with its parameters); ``_args_`` gives positional arguments; ``_secrets_`` lists the
node's arguments that are secrets (see :mod:`src.config.secrets`) and is not passed on. Nested nodes with a
``_target_`` are built first; nodes without one become plain dicts/lists.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from src.config.buildable import former_target, resolve_untrusted_target
from src.config.errors import ConfigError

TARGET, PARTIAL, ARGS, SECRETS = "_target_", "_partial_", "_args_", "_secrets_"
RESERVED = (TARGET, PARTIAL, ARGS, SECRETS)


def locate(path: str) -> Any:
    """Import ``package.module.Attr`` (longest importable module prefix, then attributes); a target that
    moved (:func:`src.config.buildable.formerly`) resolves to where it lives now."""
    moved = former_target(path)
    if moved is not None:
        return moved
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
    """Recursively build ``node``; keyword ``overrides`` replace its arguments at the top level.

    For configs the user wrote (experiment files, the command line): any importable ``_target_`` is allowed.
    Configs read from files that came from outside go through :func:`instantiate_untrusted` instead.
    """
    node = _to_plain(node)
    return _build(node, args, overrides, path="", resolve=lambda target, _key: locate(target))


def instantiate_untrusted(node: Any, *, source: str, key: str = "") -> Any:
    """Build a config read from a file from outside (a checkpoint, a run directory's ``config.yaml``).

    Every ``_target_`` in ``node`` must be a registered buildable target (:mod:`src.config.buildable`);
    all of them are checked before anything is built, so a refused target means nothing was imported from
    outside the project and nothing was called. ``source`` (the file) and ``key`` (where ``node`` sits in
    that file's config) name the culprit in the error.
    """
    node = _to_plain(node)
    check_untrusted_targets(node, source=source, key=key)
    return _build(
        node,
        (),
        {},
        path=key,
        resolve=lambda target, where: resolve_untrusted_target(target, source=source, key=where),
    )


def iter_targets(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key of the node, _target_ value)`` for every node of a plain config that has a target."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from iter_targets(item, f"{key}[{i}]")
    elif isinstance(node, dict):
        if TARGET in node:
            yield key, node[TARGET]
        for child_key, child in node.items():
            if child_key != TARGET:
                yield from iter_targets(child, f"{key}.{child_key}".lstrip("."))


def check_untrusted_targets(node: Any, *, source: str, key: str = "") -> None:
    """Raise :class:`UntrustedTargetError` for the first ``_target_`` in ``node`` that may not be built."""
    for where, target in iter_targets(_to_plain(node), key):
        resolve_untrusted_target(target, source=source, key=f"{where}._target_".lstrip("."))


def _build(
    node: Any,
    args: tuple[Any, ...],
    overrides: dict[str, Any],
    path: str,
    resolve: Callable[[Any, str], Any],
) -> Any:
    def child(value: Any, where: str) -> Any:
        return _build(value, (), {}, where, resolve)

    if isinstance(node, list):
        return [child(item, f"{path}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if TARGET not in node:
        return {k: child(v, f"{path}.{k}".lstrip(".")) for k, v in node.items() if k != SECRETS}
    kwargs = {k: child(v, f"{path}.{k}".lstrip(".")) for k, v in node.items() if k not in RESERVED}
    kwargs.update(overrides)
    positional = [*(child(a, path) for a in node.get(ARGS, [])), *args]
    target = resolve(node[TARGET], f"{path}.{TARGET}".lstrip("."))
    if node.get(PARTIAL, False):
        return functools.partial(target, *positional, **kwargs)
    try:
        return target(*positional, **kwargs)
    except TypeError as exc:
        where = f" at '{path}'" if path else ""
        raise ConfigError(f"cannot build {node[TARGET]}{where}: {exc}") from exc
