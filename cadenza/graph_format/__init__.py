"""The style-graph file format, declared once, and what derives from it: the checker and the JSON Schema.

One job: be the one place that knows the graph format (version 1). Import
from here (this package sits at the bottom: the runtime and the SDK both may)::

    from cadenza import graph_format as gf
    issues = gf.validate(data)       # every problem of plain data, by path
    gf.SECTIONS["stinger"].keys["quantize"].default   # "beat"
    gf.graph_json_schema()           # the JSON Schema, generated

- :mod:`.declaration`: the tables — sections, keys, types, ranges, defaults,
  words (control names, curve shapes, quantize, modes, parameter types) and
  limits — and :func:`parse_duration`;
- :mod:`.check`: :func:`validate` → :class:`Issue` list, every problem at
  once (the runtime's loader adds ``file:line``; the SDK's builder checks
  what it writes);
- :mod:`.schema`: :func:`graph_json_schema` (the committed copy lives beside
  the runtime's loader, ``cadenza-graph.schema.json``).
"""

from __future__ import annotations

from cadenza.graph_format.check import Issue, validate
from cadenza.graph_format.declaration import *  # noqa: F403 - the declaration's names are this package's
from cadenza.graph_format.declaration import __all__ as _declared
from cadenza.graph_format.schema import graph_json_schema, schema_text

__all__ = [*_declared, "Issue", "graph_json_schema", "schema_text", "validate"]
