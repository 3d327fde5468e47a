"""The ``cadenza graph`` commands: check style-graph files, print the format's JSON Schema.

One job: argparse wiring and printing for style graphs. :func:`add_graph_commands`
adds ``graph`` to the ``cadenza`` command's subparsers; each subcommand sets
``func`` (``args -> exit code``) as the other commands do. More subcommands
(``plot``) go on the parser that :func:`add_graph_commands` returns.

``check`` prints ``FILE: ok (...)`` or every issue of every file, one per line
(``file:line path: message``), and exits with 2 when any file has one — never
a traceback. It reads a graph exactly as ``serve --graph`` and LoadGraph do
(audio files decoded, every runtime refusal found by the loader) and asks the
backend (``--backend``, synth by default) to embed every prompt, as loading
does: what check accepts, the runtime runs. What the backend says about a
prompt it can embed (unknown words ignored) is printed to stderr as
``FILE: warning: ...``, without changing the exit code.
"""

from __future__ import annotations

import argparse
import sys
from typing import TypeVar

from cadenza.errors import CadenzaError
from cadenza.runtime.graph.loader import InvalidGraph, load_graph

__all__ = ["EXIT_ERROR", "add_graph_commands", "cmd_graph_check", "cmd_graph_schema"]

EXIT_ERROR = 2  # as cadenza.runtime.cli.EXIT_ERROR, which imports this module

_P = TypeVar("_P", bound=argparse.ArgumentParser)  # the parser class of the cadenza command


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cmd_graph_check(args: argparse.Namespace) -> int:
    """Load every file; print ``FILE: ok (...)`` or its issues. 0 when all are valid, else 2."""
    bad_files = issues = 0
    backend = None
    for file in args.files:
        try:
            g = load_graph(file)
            from cadenza.runtime.mixing import PromptMixer

            if backend is None:
                from cadenza.runtime.backends import get_backend

                backend = get_backend(getattr(args, "backend", "synth"))
            from cadenza.runtime.graph.runnable import embed_prompts

            mixer = PromptMixer(backend)  # one per file: each file's warnings are its own
            embed_prompts(g, mixer)
            for warning in mixer.warnings:  # as LoadGraph's reply and render say them (unknown words)
                print(f"{file}: warning: {warning}", file=sys.stderr)
        except InvalidGraph as exc:
            bad_files += 1
            issues += len(exc.issues)
            for issue in exc.issues:
                print(issue)
            continue
        except CadenzaError as exc:  # the backend could not start (a missing model, say): not the file's fault
            print(f"cadenza graph check: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(f"{file}: ok ({_plural(len(g.parameters), 'parameter')}, {_plural(len(g.prompts), 'prompt')}, "
              f"{_plural(len(g.states), 'state')})")
    if bad_files:
        print(f"cadenza graph check: {_plural(issues, 'error')} in {bad_files} of {_plural(len(args.files), 'file')}",
              file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_graph_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of the style-graph format."""
    from cadenza.runtime.graph.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


def add_graph_commands(subparsers: argparse._SubParsersAction[_P]) -> argparse._SubParsersAction[_P]:
    """Add ``graph`` (with ``check`` and ``schema``) to ``subparsers``; returns ``graph``'s own subparsers.

    ``subparsers`` is what ``ArgumentParser.add_subparsers()`` returned; the
    graph parser and its subcommands are of the same parser class, so they
    keep its one-line errors.
    """
    g = subparsers.add_parser("graph", help="check style-graph files, print the format's JSON Schema",
                              description="Style graphs: authored YAML/JSON files that turn game parameters into "
                                          "prompt weights and musical controls.")
    sub = g.add_subparsers(dest="graph_command", metavar="SUBCOMMAND", required=True)

    c = sub.add_parser("check", help="validate style-graph files and list every problem",
                       description="Validate style-graph files. Prints 'FILE: ok (...)' or every problem as "
                                   "'file:line path: message'; exits with 2 when any file has a problem.")
    c.add_argument("files", nargs="+", metavar="FILE", help="a .yaml or .json style graph")
    c.add_argument("--backend", default="synth", choices=["synth", "magenta"],
                   help="the backend that must embed every prompt, as serve --backend would (default synth)")
    c.set_defaults(func=cmd_graph_check)

    s = sub.add_parser("schema", help="print the JSON Schema of the style-graph format",
                       description="Print the JSON Schema (draft 2020-12) of the style-graph format, for editors.")
    s.set_defaults(func=cmd_graph_schema)
    return sub
