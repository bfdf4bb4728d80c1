"""Strict reading of typed options: one type checker and a YAML 1.2-style reader of flat mappings.

Used by :mod:`.config` for YAML files, Python overrides and saved configs alike, so that every type
error reads the same way and names the key:

>>> check_type("lr", 1, float)
1.0
>>> check_type("resume", "false", bool)
Traceback (most recent call last):
...
ValueError: option 'resume': expected true or false, got str 'false' (write true or false without quotes)
"""
from __future__ import annotations

import math
import re
import typing
from pathlib import Path
from typing import Any

__all__ = ["base_type", "check_type", "read_yaml_mapping"]

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def base_type(hint: Any) -> tuple[type, bool]:
    """``(bool|int|float|str, optional)`` of an annotation such as ``int | None``."""
    args = typing.get_args(hint)
    if args:
        base = [a for a in args if a is not type(None)]
        return base[0], len(base) < len(args)
    return hint, False


def _is_numpy(value: Any, kinds: str) -> bool:
    return type(value).__module__ == "numpy" and getattr(getattr(value, "dtype", None), "kind", "") in kinds \
        and getattr(value, "ndim", 1) == 0


def check_type(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the annotated type, or a ValueError naming ``key``, the expected type and the value.

    Strict on purpose: a bool accepts only ``True`` / ``False`` (the string ``"false"`` is truthy
    and once silently resumed an old run), an int rejects floats and strings, a float accepts ints
    (and must be finite), a str accepts a Path.
    """
    typ, optional = base_type(hint)
    expected = _TYPE_WORDS[typ] + (" or null" if optional else "")
    if value is None:
        if optional:
            return None
        raise ValueError(f"option {key!r}: expected {expected}, got null")
    if typ is bool:
        ok = isinstance(value, bool) or _is_numpy(value, "b")
    elif typ is int:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or _is_numpy(value, "iu")
    elif typ is float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or _is_numpy(value, "iuf")
    else:
        ok = isinstance(value, (str, Path))
    if not ok:
        tip = ""
        if isinstance(value, str) and typ is not str:
            tip = " (write true or false without quotes)" if typ is bool else " (write the number without quotes)"
        shown = f"{type(value).__name__} {value!r}"
        raise ValueError(f"option {key!r}: expected {expected}, got {shown}{tip}")
    value = typ(value)
    if typ is float and not math.isfinite(value):
        raise ValueError(f"option {key!r}: expected a finite number, got {value!r}")
    return value


# YAML 1.2 scalars: only true/false are booleans (YAML 1.1 also reads yes/no/on/off, so that
# ``channels_last: on`` became True), and 2e-6 is a float (PyYAML reads it as a string).
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT12_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|"
                         r"^\.(?:nan|NaN|NAN)$")


def _loader():
    import yaml

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2 booleans and floats; duplicate keys are an error."""

    StrictLoader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_RE, list("tTfF"))
    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT12_RE, list("-+0123456789."))

    def mapping(loader, node):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML (or JSON) file, keys with ``-`` spelled ``_``; ``{}`` if empty.

    FileNotFoundError if ``path`` is missing; ValueError naming the file and line for syntax errors
    and duplicate keys, and naming the file for a top level that is not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ValueError(f"{where}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: invalid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values, got {type(data).__name__}")
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key in out:
            raise ValueError(f"{path}: option {key!r} is given twice (as '-' and '_' spelling)")
        out[key] = value
    return out
