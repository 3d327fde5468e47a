"""Plain style-graph data written as YAML that reads like a hand-written file.

One job: :func:`dump_yaml` — sections in block style, short entries inline
within 100 columns, lists indented under their key, and strings quoted where
the YAML 1.2 core schema (what the runtime's loader reads) would take them for
something else (``1e3``, ``0o17``), with PyYAML's safe dumper.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["dump_yaml"]


def dump_yaml(data: dict[str, Any]) -> str:
    """A style graph's plain data (in the format's layout) as YAML text."""
    return yaml.dump(_layout(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=_WIDTH,
                     default_flow_style=False)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with inline collections where marked, YAML 1.2-safe strings and indented lists."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # "  - item" under a key, as people write it


class _FlowList(list[Any]):
    pass


class _FlowDict(dict[str, Any]):
    pass


# Plain scalars the YAML 1.2 core schema (what the runtime's loader reads) resolves to non-strings.
_CORE_SCALAR = re.compile(
    r"~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML resolves by YAML 1.1, so it would leave e.g. "1e3" or "0o17" plain; quote what 1.2 reads otherwise.
    style = "'" if text == "" or _CORE_SCALAR.fullmatch(text) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _represent_flow_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _represent_flow_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_FlowList, _represent_flow_list)
_Dumper.add_representer(_FlowDict, _represent_flow_dict)

_WIDTH = 100  # a collection whose inline form ends within this column is written inline
_BLOCK_SECTIONS = ("parameters", "prompts", "nodes", "mix", "controls", "transitions", "stingers", "triggers")


def _inline(value: Any) -> Any:
    if isinstance(value, dict):
        return _FlowDict({k: _inline(v) for k, v in value.items()})
    if isinstance(value, list):
        return _FlowList(_inline(v) for v in value)
    return value


def _fit(value: Any, column: int, indent: int) -> Any:
    """Inline when the whole value, starting at ``column``, fits the width; else block with each child fitted.

    ``indent`` is where the value's own keys or ``- `` start when it is written as a block.
    """
    if not isinstance(value, (dict, list)):
        return value
    flow = _inline(value)
    text = yaml.dump(flow, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)
    if column + len(text.rstrip("\n")) <= _WIDTH and "\n" not in text.rstrip("\n"):
        return flow
    if isinstance(value, dict):
        return {k: _fit(v, indent + len(str(k)) + 2, indent + 2) for k, v in value.items()}
    return [_fit(v, indent + 2, indent + 2) for v in value]


def _state_layout(name: str, state: dict[str, Any]) -> Any:
    """A state of ``states.list`` (keys at column 6): its mix, when it has one, is a block list like the global one."""
    if "mix" not in state:
        return _fit(state, 4 + len(name) + 2, 6)
    return {k: ([_fit(e, 10, 10) for e in v] if k == "mix" else _fit(v, 6 + len(k) + 2, 8)) for k, v in state.items()}


def _layout(data: dict[str, Any]) -> dict[str, Any]:
    """Marks which collections the YAML writes inline: the sections stay block, their entries fit."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _BLOCK_SECTIONS:
            if isinstance(value, dict):
                out[key] = {k: _fit(v, 2 + len(k) + 2, 4) for k, v in value.items()}
            else:
                out[key] = [_fit(v, 4, 4) for v in value]
        elif key == "states":
            out[key] = {k: ({n: _state_layout(n, v) for n, v in v.items()} if k == "list" else v)
                        for k, v in value.items()}
        else:
            out[key] = _fit(value, len(key) + 2, 2)
    return out
