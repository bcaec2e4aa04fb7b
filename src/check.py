"""Check an experiment before running it: ``python -m src.check experiment=<name> [key=value ...]``.

Composes and type-checks the configuration, sets up its DataModule (layout, images and identities per split,
one sample of each split the run reads decoded) and checks the weight files the configuration names (present,
sha256 against the weights manifest; run checkpoints readable), then prints a checklist: OK, MISSING or BAD
with what is wrong and how to fix it. It builds no model, starts no run and writes no run directory (a
DataModule may store the pair lists it derives in ``splits_dir``, as the first run would).

Exit code: 0 when every check is OK, 1 when data or weights are missing or bad, 2 for a configuration error.

The weights a configuration needs are found in its values: ``manifest:<name>`` values, run checkpoints and
weight files at keys ending in ``_ckpt``/``_weights`` (and ``ckpt_path``), and the nodes whose ``_target_``
a manifest entry names in its ``used_by`` list (``build_proface_recognizer("IResNet50")`` matches a node with
``name: IResNet50``; a factory in package ``p`` given ``name: x`` matches ``p.x``) unless the node's own
``weights`` key says otherwise. Weights a module loads without naming them in its config are checked when it
is built.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.cli import Args, compose_from_args, expected_errors, parse_args
from src.config.compose import ComposeResult, compose, group_file
from src.config.errors import ConfigError
from src.config.instantiate import instantiate, locate
from src.config.secrets import RunSecrets
from src.datamodules.components.layout import DatasetLayoutError
from src.papers.registry import discover
from src.utils.checkpoint_files import CheckpointError, open_checkpoint
from src.utils.run_record import ENV_RUN_DIR, rerun_command
from src.weights.core import (
    MissingWeightsError,
    WeightEntry,
    WeightsError,
    candidate_paths,
    fetch_command,
    load_manifest,
    resolve,
    weights_dir,
)

USAGE = """usage: python -m src.check experiment=<name> [key=value ...] [group=option ...] [--debug]

  Checks the configuration, the dataset and the weights of a run without starting it, and prints a checklist.
  Exit 0: all OK; 1: data or weights missing or bad; 2: a configuration error. --debug adds tracebacks.
"""
OK, MISSING, BAD = "OK", "MISSING", "BAD"
SPLITS = ("train", "val", "test")
FILE_KEY = re.compile(r"(.*_ckpt|ckpt_path|(.*_)?weights)")
DOCS_CITATION = re.compile(r'(docs/[\w/.-]+\.md), "([^"]+)"')
MANIFEST_PREFIX = "manifest:"


@dataclass
class Item:
    """One line of the checklist: its status, what was checked, the finding and how to fix it."""

    status: str
    what: str
    detail: str
    fix: str = ""
    error: BaseException | None = None


@dataclass(frozen=True)
class Need:
    """A weight file the configuration needs: a manifest entry, or a file path, named at ``key``."""

    key: str
    manifest: str | None = None
    path: str | None = None


# --- configuration ------------------------------------------------------------------------------------------


def check_config(argv: Sequence[str], args: Args) -> tuple[ComposeResult, list[Item]]:
    """Compose and type-check; values left ``???`` are reported (MISSING), not raised, so that the data and
    weights are still checked. Raises :class:`ConfigError` when the configuration does not compose."""
    if any(item.startswith("resume=") for item in args.overrides):
        result, _ = compose_from_args(argv)
    elif args.experiment is None:
        raise ConfigError("missing experiment=<name>, e.g. experiment=demo/recognizer")
    else:
        result = compose(args.experiment, args.overrides, allow_missing=True)
    cfg = result.config
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"cannot resolve config: {exc}") from exc
    model, data = _target_name(cfg, "model"), _target_name(cfg, "datamodule")
    items = [Item(OK, "config", f"composed and type-checked: model {model}, datamodule {data}")]
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        items.append(
            Item(
                MISSING,
                "config",
                f"required values not set: {', '.join(missing)}",
                f"give them on the command line, e.g. {missing[0]}=...",
            )
        )
    return result, items


def _target_name(cfg: DictConfig, key: str) -> str:
    node = cfg.get(key)
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    return str(target).rsplit(".", 1)[-1] if target else "(none)"


# --- data ---------------------------------------------------------------------------------------------------


def check_data(result: ComposeResult) -> list[Item]:
    """Build the DataModule, check its layout, set it up, count what it found, decode a sample per split."""
    cfg = result.config
    option = result.group_choices.get("datamodule")
    fix = _data_fix(cfg, option)
    try:
        datamodule = instantiate(cfg.datamodule)
        check_layout = getattr(datamodule, "check_layout", None)
        if callable(check_layout):
            check_layout()
        datamodule.setup("fit" if cfg.get("train", True) else "test")
        describe = getattr(datamodule, "describe", None)
        info = describe() if callable(describe) else {}
    except (DatasetLayoutError, FileNotFoundError) as exc:
        if _is_missing(exc):  # nothing where the config points: say where to put it
            return [Item(MISSING, "data", _one_line(exc), _data_fix(cfg, option, where=True), exc)]
        return [Item(BAD, "data", _one_line(exc), fix, exc)]  # the data is there but unusable as configured
    except Exception as exc:  # any set-up failure is this check's finding
        return [Item(BAD, "data", _one_line(exc), fix, exc)]
    items = [Item(OK, "data", _counts(info, type(datamodule).__name__))]
    for split in _splits(cfg):
        items.append(_decode_sample(datamodule, split, fix))
    return items


def _splits(cfg: DictConfig) -> list[str]:
    """The splits a run of ``cfg`` reads: train and val when it trains, test when it tests."""
    train, test = bool(cfg.get("train", True)), bool(cfg.get("test", True))
    return [*(("train", "val") if train else ()), *(("test",) if test or not train else ())]


def _decode_sample(datamodule: Any, split: str, fix: str) -> Item:
    """Read item 0 of the split's loader dataset (decoding its image files)."""
    try:
        dataset = getattr(datamodule, f"{split}_dataloader")().dataset
        sample = dataset[0]
    except Exception as exc:  # a missing split, an unreadable image: this check's finding
        return Item(BAD, "data", f"{split} split: {_one_line(exc)}", fix, exc)
    return Item(OK, "data", f"{split} sample 0 of {len(dataset)} decoded: {_shapes(sample)}")


def _shapes(sample: Any) -> str:
    """``image 3x112x112, identity`` for a dict of tensors (what a batch item holds)."""
    if not isinstance(sample, Mapping):
        return type(sample).__name__
    parts = []
    for key, value in sample.items():
        shape = getattr(value, "shape", None)
        parts.append(f"{key} {'x'.join(map(str, shape))}" if shape is not None and len(shape) else str(key))
    return ", ".join(parts)


def _counts(info: Mapping[str, Any], fallback: str) -> str:
    """``<dataset>: train N images / K identities, val ..., test ...`` from ``describe()``."""
    splits = []
    for split in SPLITS:
        if f"{split}_images" not in info:
            continue
        identities = info.get(f"{split}_identities")
        splits.append(
            f"{split} {info[f'{split}_images']} images"
            + (f" / {identities} identities" if identities else "")
        )
    name = str(info.get("dataset", fallback)) + (" (synthetic data)" if info.get("synthetic") else "")
    missing = info.get("missing_files")
    tail = (
        f"; {missing['count']} listed images missing (allow_partial)" if isinstance(missing, Mapping) else ""
    )
    return f"{name}: {', '.join(splits) or 'set up'}{tail}"


def _is_missing(exc: BaseException) -> bool:
    """Whether a layout error says something is absent (a root, a list file, listed images), not that the data
    is there but laid out or sized wrongly (images directly in the root, too few identities)."""
    if not isinstance(exc, DatasetLayoutError):
        return isinstance(exc, FileNotFoundError)
    return "not found" in str(exc) or "missing" in str(exc)


def _data_fix(cfg: DictConfig, option: str | None, *, where: bool = False) -> str:
    """How to fix a data problem: the docs section of the DataModule's config and, for absent data
    (``where``), where the root is set."""
    docs = "docs/datasets.md"
    if option:
        path = group_file("datamodule", option)
        found = DOCS_CITATION.search(" ".join(path.read_text().split())) if path.is_file() else None
        docs = f'{found.group(1)}, "{found.group(2)}"' if found else docs
    root = cfg.datamodule.get("root") if isinstance(cfg.get("datamodule"), DictConfig) else None
    place = f"put the data at {root} or set datamodule.root=<folder>; " if root and where else ""
    return f"{place}see {docs} and data/README.md"


# --- weights ------------------------------------------------------------------------------------------------


def needed_weights(cfg: DictConfig, manifest: Mapping[str, WeightEntry]) -> list[Need]:
    """The weight files ``cfg`` names (see the module docstring for the rules), in config order."""
    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    uses = [(entry.name, _parse_use(use)) for entry in manifest.values() for use in entry.used_by]
    found: dict[Need, None] = {}
    for key, node in _walk(plain, ""):
        if isinstance(node, str) and node.startswith(MANIFEST_PREFIX):
            found[Need(key, manifest=node.removeprefix(MANIFEST_PREFIX))] = None
        elif (
            isinstance(node, str)
            and FILE_KEY.fullmatch(key.rsplit(".", 1)[-1])
            and node not in ("manifest", "???")
        ):
            found[Need(key, path=node)] = None
        elif isinstance(node, Mapping) and isinstance(node.get("_target_"), str):
            if node.get("weights", "manifest") != "manifest":
                continue  # random (null) or a file of its own (checked at ``<key>.weights``)
            names = _target_names(node["_target_"])
            for name, use in uses:
                if _uses(node, names, use):
                    found[Need(key or "(config)", manifest=name)] = None
    return list(found)


def _walk(node: Any, key: str) -> Iterator[tuple[str, Any]]:
    yield key, node
    if isinstance(node, Mapping):
        for child, value in node.items():
            yield from _walk(value, f"{key}.{child}" if key else str(child))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{key}.{index}")


def _parse_use(text: str) -> tuple[str, list[str], dict[str, str]]:
    """``module.Name("a", k="v")`` → (path, positional values, keyword values)."""
    path, _, rest = text.partition("(")
    keywords = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', rest))
    positional = re.findall(r'(?<![=\w])\s*"([^"]*)"', re.sub(r'\w+\s*=\s*"[^"]*"', "", rest))
    return path.strip(), positional, keywords


def _target_names(target: str) -> set[str]:
    """A ``_target_`` as written and where it is defined (``src.obfuscators.X`` → ``src.obfuscators.m.X``)."""
    names = {target}
    if target.startswith("src."):
        try:
            obj = locate(target)
            names.add(f"{obj.__module__}.{obj.__qualname__}")
        except Exception:  # an unimportable target fails the run itself, with its own message
            pass
    return names


def _uses(node: Mapping[str, Any], targets: set[str], use: tuple[str, list[str], dict[str, str]]) -> bool:
    """Whether a config node builds what a manifest ``used_by`` entry names."""
    path, positional, keywords = use
    values = {str(value) for value in node.values() if isinstance(value, str | int | float)}
    if path in targets:
        return all(value in values for value in positional) and all(
            str(node.get(key)) == value for key, value in keywords.items()
        )
    packages = {target.rpartition(".")[0] for target in targets}
    return (
        not positional
        and not keywords
        and any(f"{package}.{value}" == path for package in packages for value in values)
    )


def check_weights(cfg: DictConfig) -> list[Item]:
    """One item per weight file the configuration needs."""
    try:
        manifest = load_manifest()
    except WeightsError as exc:
        return [Item(BAD, "weights", _one_line(exc), "fix the weights manifest", exc)]
    needs = needed_weights(cfg, manifest)
    if not needs:
        return [Item(OK, "weights", "none named by the config")]
    return [_check_need(need, manifest) for need in needs]


def _check_need(need: Need, manifest: Mapping[str, WeightEntry]) -> Item:
    if need.manifest is not None:
        return check_manifest_entry(need.manifest, need.key, manifest)
    assert need.path is not None
    path, how = Path(need.path).expanduser(), f"set {need.key}=<file>"
    if not path.is_file():
        return Item(MISSING, "weights", f"{need.key}: file not found: {path}", how)
    if need.key.endswith("_ckpt") or need.key == "ckpt_path":
        try:
            _, info = open_checkpoint(path, mmap=True)
        except CheckpointError as exc:
            return Item(BAD, "weights", f"{need.key}: {_one_line(exc)}", how, exc)
        made_by = info.experiment or "an unrecorded experiment"
        return Item(OK, "weights", f"{need.key}: {path} (a checkpoint of {made_by})")
    return Item(OK, "weights", f"{need.key}: {path} (present; not in the manifest, no sha256 to check)")


def check_manifest_entry(name: str, key: str, manifest: Mapping[str, WeightEntry]) -> Item:
    """Resolve a manifest entry: found and sha256-checked (OK), not found (MISSING), refused (BAD)."""
    entry = manifest.get(name)
    if entry is None:
        return Item(
            BAD, "weights", f"{name}: no such manifest entry (named by {key})", "python -m src.weights list"
        )
    how = f"put {entry.file} at {weights_dir() / entry.file}: {fetch_command(entry)}"
    try:
        path = resolve(name, manifest)
    except MissingWeightsError as exc:
        looked = ", ".join(str(p) for p in candidate_paths(entry))
        return Item(
            MISSING, "weights", f"{name} for {key}: {entry.file} not found (looked in {looked})", how, exc
        )
    except WeightsError as exc:
        return Item(BAD, "weights", f"{name} for {key}: {_one_line(exc)}", how, exc)
    return Item(OK, "weights", f"{name} for {key}: {path} (sha256 checked)")


# --- output -------------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, expected_errors()) else f"{type(exc).__name__}: {text}"


def print_checklist(title: str, items: Sequence[Item], redact: Callable[[str], str], debug: bool) -> None:
    """The checklist, one line per item (a ``fix:`` line under each that is not OK)."""
    print(redact(title))
    for item in items:
        print(redact(f"  {item.status:<8} {item.what:<10} {item.detail}"))
        if item.status != OK and item.fix:
            print(redact(f"  {'':<8} {'':<10} fix: {item.fix}"))
        if debug and item.error is not None:
            print(redact("".join(traceback.format_exception(item.error))), file=sys.stderr, end="")
    bad = [item for item in items if item.status != OK]
    if bad:
        counts = ", ".join(
            f"{sum(i.status == s for i in bad)} {s}"
            for s in (MISSING, BAD)
            if any(i.status == s for i in bad)
        )
        print(f"{len(bad)} of {len(items)} checks not OK ({counts})")
    else:
        print(f"all {len(items)} checks OK")


def _secrets(result: ComposeResult) -> RunSecrets:
    try:
        return RunSecrets.prepare(copy.deepcopy(result.config), result.overrides)
    except (ConfigError, OmegaConfBaseException):
        return RunSecrets()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks and print the checklist; exit 0 (all OK), 1 (data/weights) or 2 (configuration)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    os.environ.pop(
        ENV_RUN_DIR, None
    )  # never write into a run directory (missing-file lists go to a temp folder)
    try:
        args = parse_args(argv, USAGE)
        discover()
        result, items = check_config(argv, args)
    except (ConfigError, FileNotFoundError, OmegaConfBaseException) as exc:
        from src.cli import _without_secrets

        print_checklist(
            "check",
            [Item(BAD, "config", _one_line(exc), "", exc)],
            lambda t: _without_secrets(t, argv),
            "--debug" in argv,
        )
        return 2
    secrets = _secrets(result)
    task = "train" if result.config.get("train", True) else "eval"
    command = rerun_command(task, result.experiment, secrets.items(result.overrides))
    items += check_data(result)
    items += check_weights(result.config)
    print_checklist(f"check {result.experiment} ({command})", items, secrets.text, args.debug)
    if any(item.status != OK for item in items if item.what == "config"):
        return 2
    return 0 if all(item.status == OK for item in items) else 1


if __name__ == "__main__":
    sys.exit(main())
