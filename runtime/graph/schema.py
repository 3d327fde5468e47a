"""The committed JSON Schema file of the style-graph format, and the command that rewrites it.

One job: keep ``cadenza-graph.schema.json`` (beside this module, shipped with
the package so that editors can point at it) equal to what
:func:`cadenza.graph_format.schema.graph_json_schema` generates from the format's one
declaration (:mod:`cadenza.graph_format`). A test fails when the file is
stale; rewrite it with ``python -m cadenza.runtime.graph.schema --write``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cadenza.graph_format.schema import graph_json_schema, schema_text

__all__ = ["SCHEMA_FILE", "graph_json_schema", "main", "schema_text"]

SCHEMA_FILE = Path(__file__).with_name("cadenza-graph.schema.json")


def main(argv: Sequence[str] | None = None) -> int:
    """``--write``: rewrite the committed schema file; otherwise print the schema."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--write"]:
        SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {SCHEMA_FILE}")
        return 0
    if args:
        print("usage: python -m cadenza.runtime.graph.schema [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
