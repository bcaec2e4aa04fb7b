"""Change a sweep file's parameters on the command line, checked against the parameters the file has.

``python -m src.sweep <file> [key=value ...]`` reads each ``key=value`` as one of:

* ``parameters.<parameter>.<field>=<value>``: a field of a parameter's spec, written as in the file's
  ``parameters:`` block (``parameters.model.optimizer.lr.values=[0.001,0.01]``);
* ``<parameter>.<field>=<value>``: the same without ``parameters.`` (``model.optimizer.lr.values=[...]``);
* ``<parameter>=<value>``: the parameter pinned to one value (``seed=3`` is ``parameters.seed.value=3``);
* anything else: a config override passed to every point's run (``trainer.max_epochs=2``).

``<parameter>`` is a name the sweep file sweeps (nested ``parameters:`` blocks give dotted names) and
``<field>`` one of ``value, values, probabilities, min, max, distribution, mu, sigma, q``. Giving ``value``,
``values`` or ``distribution`` replaces the parameter's spec (with the parameter's other fields given in the
same command); the other fields alone change single entries of it (``model.optimizer.lr.max=0.1``). Values
are read as in the sweep file (``1e-3`` is a float). An unknown parameter or field is an error that lists
what the sweep has; a parameter cannot be added this way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from src.sweeping.spec import (
    PARAMETER_KEYS,
    SweepSpec,
    SweepSpecError,
    load_yaml_value,
    parse_sweep_spec,
)

__all__ = ["PREFIX", "SPEC_FIELDS", "ParameterOverride", "apply_parameter_overrides", "split_overrides"]

PREFIX = "parameters."
SPEC_FIELDS = tuple(sorted(PARAMETER_KEYS - {"parameters"}))
_REPLACING = frozenset({"value", "values", "distribution"})


@dataclass(frozen=True)
class ParameterOverride:
    """One command-line change of a swept parameter: ``name``'s spec ``field`` set to ``value``."""

    name: str
    field: str
    value: Any
    text: str  # the override as given


def split_overrides(spec: SweepSpec, items: Sequence[str]) -> tuple[list[ParameterOverride], list[str]]:
    """The command line's changes of swept parameters, and the config overrides for every run."""
    changes: list[ParameterOverride] = []
    passed: list[str] = []
    for item in items:
        key, equals, text = item.partition("=")
        if not equals:
            raise SweepSpecError(f"override {item!r} is not of the form key=value")
        change = _parameter_change(spec, key.lstrip("+"), text, item)
        if change is None:
            passed.append(item)
        else:
            changes.append(change)
    return changes, passed


def _parameter_change(spec: SweepSpec, key: str, text: str, item: str) -> ParameterOverride | None:
    names = spec.parameter_names
    if key.startswith(PREFIX):
        rest = key[len(PREFIX) :]
        name, _, field = rest.rpartition(".")
        if name in names and field in SPEC_FIELDS:
            return ParameterOverride(name, field, _value(text, item), item)
        if rest in names:
            raise SweepSpecError(
                f"{item!r}: name the field of parameter '{rest}' to change, e.g. {PREFIX}{rest}.values=[...] "
                f"(fields: {', '.join(SPEC_FIELDS)})"
            )
        raise SweepSpecError(f"{item!r}: {_unknown(spec, rest)}")
    if key in names:
        return ParameterOverride(key, "value", _value(text, item), item)
    owner = next((name for name in names if key.startswith(f"{name}.")), None)
    if owner is None:
        return None
    field = key[len(owner) + 1 :]
    if field not in SPEC_FIELDS:
        raise SweepSpecError(
            f"{item!r}: '{field}' is not a field of a sweep parameter's spec (fields: "
            f"{', '.join(SPEC_FIELDS)}); '{owner}' is swept by {spec.source}, so its sub-keys cannot be set "
            "for every run"
        )
    return ParameterOverride(owner, field, _value(text, item), item)


def _unknown(spec: SweepSpec, rest: str) -> str:
    return (
        f"the sweep {spec.source} has no parameter '{rest.rpartition('.')[0] or rest}'; its parameters: "
        f"{', '.join(spec.parameter_names)} (write parameters.<parameter>.<field>=<value>, fields: "
        f"{', '.join(SPEC_FIELDS)})"
    )


def _value(text: str, item: str) -> Any:
    try:
        return load_yaml_value(text)
    except Exception as err:  # yaml errors have many types
        raise SweepSpecError(f"{item!r}: cannot read the value {text!r}: {err}") from err


def apply_parameter_overrides(spec: SweepSpec, changes: Sequence[ParameterOverride]) -> SweepSpec:
    """``spec`` with ``changes`` applied, validated again (errors name the overrides)."""
    if not changes:
        return spec
    raw = copy.deepcopy(dict(spec.raw))
    by_name: dict[str, list[ParameterOverride]] = {}
    for change in changes:
        by_name.setdefault(change.name, []).append(change)
    for name, given in by_name.items():
        parent, key = _locate(raw["parameters"], name)
        replace = any(change.field in _REPLACING for change in given)
        entry = {} if replace or not isinstance(parent[key], Mapping) else dict(parent[key])
        entry.pop("value", None)  # a pinned parameter given a range: the range
        entry.update({change.field: change.value for change in given})
        parent[key] = entry
    source = f"{spec.source} with {' '.join(change.text for change in changes)}"
    return parse_sweep_spec(raw, source=source, default_name=spec.name)


def _locate(block: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
    """The mapping holding parameter ``name``'s spec and its key there (nested blocks give dotted names)."""
    if name in block:
        return block, name
    for key, entry in block.items():
        nested = entry.get("parameters") if isinstance(entry, Mapping) else None
        if isinstance(nested, dict) and name.startswith(f"{key}."):
            try:
                return _locate(nested, name[len(key) + 1 :])
            except KeyError:
                continue
    raise KeyError(name)
