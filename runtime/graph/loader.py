"""Reads a style-graph file (YAML or JSON) into the :mod:`~cadenza.runtime.graph.spec` model.

One job: file → :class:`~cadenza.runtime.graph.spec.Graph`, or an
:class:`InvalidGraph` (a :class:`~cadenza.errors.GraphError`) that lists
*every* problem found, each as a :class:`GraphIssue` printed like::

    battle.yaml:14 mix[1].weight.curve.points[1]: x values must increase (0.8 after 0.9)

The steps, each in its own module:

1. The size is checked before a byte is read (:data:`MAX_BYTES`); the bytes
   must be UTF-8 text without control characters.
2. :mod:`.yamlread` reads the text safely into plain data, with the line of
   every value and key (aliases, custom tags, deep nesting and too many values
   refused; YAML 1.2 scalars; duplicate keys reported).
3. :func:`cadenza.graph_format.validate` checks the data against the format's
   one declaration and returns every problem by path; here each gets its
   ``file:line``.
4. Audio prompt and stinger files are read and decoded now (:mod:`.audio`),
   so a missing or undecodable file is an issue with its line too.
5. :mod:`.convert` builds the dataclasses, and :mod:`.runnable` checks what
   the runtime would refuse (scales, the control rate, node depth).
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from cadenza import graph_format
from cadenza.runtime.files import FileOutside, FilePolicy, FileRefused
from cadenza.runtime.graph.convert import to_graph
from cadenza.runtime.graph.issues import GraphIssue, InvalidGraph
from cadenza.runtime.graph.runnable import check_runnable
from cadenza.runtime.graph.spec import Duration, Graph
from cadenza.runtime.graph.yamlread import MAX_DEPTH, MAX_ISSUES, MAX_VALUES, Tree, decode_text, size_text
from cadenza.runtime.graph.yamlread import parse_tree as _parse_tree

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_ISSUES",
    "MAX_VALUES",
    "GraphIssue",
    "InvalidGraph",
    "load_graph",
    "loads_graph",
    "parse_duration",
]

MAX_BYTES = 1 << 20  # a style graph is a hand-written file; 1 MiB is far beyond any real one


# ------------------------------------------------------------------ public API
def load_graph(path: str | os.PathLike[str], files: FilePolicy | None = None) -> Graph:
    """Read and validate the style graph at ``path`` (YAML, or JSON).

    Audio prompt and stinger files are resolved against the file's folder,
    read (regular files only, bounded) and decoded now: a missing or
    undecodable file is an issue with its file:line. ``files`` (a client's
    request): the graph and every audio file must lie inside its allowed
    folders — the graph's own refusal is raised as
    :class:`~cadenza.runtime.files.FileRefused`; ``None`` (the operator's
    command line): paths are resolved but not confined.
    Raises :class:`InvalidGraph` listing every problem found.
    """
    file = os.fspath(path)
    p = Path(file)

    def fail(message: str) -> NoReturn:
        raise InvalidGraph([GraphIssue(file, None, "", message)])

    if files is not None:
        files.resolve(file, where="path")  # FileOutside: the same words whether it exists or not
        try:
            resolved, data = files.read(file, where="path", max_bytes=MAX_BYTES)
        except FileOutside:
            raise
        except FileRefused as exc:
            fail(exc.message)
        return _load(decode_text(data, file), file, resolved.parent, files)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            fail("not a regular file (give the path of a .yaml or .json style graph)")
        if st.st_size > MAX_BYTES:
            fail(f"the file is {size_text(st.st_size)}, over the {size_text(MAX_BYTES)} limit for a style graph")
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read the file: {exc.strerror or exc}")
    if len(data) > MAX_BYTES:
        fail(f"the file is over the {size_text(MAX_BYTES)} limit for a style graph")
    return _load(decode_text(data, file), file, Path(os.path.abspath(p.parent)), None)


def loads_graph(text: str | bytes, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None,
                files: FilePolicy | None = None) -> Graph:
    """Validate a style graph given as text; ``source`` names it in errors.

    Relative audio paths are resolved against ``base_dir`` when given (the
    folder the text came from), else against the working directory; audio
    files are read and decoded as :func:`load_graph` does, confined by
    ``files`` when given.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise InvalidGraph([GraphIssue(source, None, "", f"the text is {size_text(len(text))}, over the "
                                                             f"{size_text(MAX_BYTES)} limit for a style graph")])
        text = decode_text(text, source)
    elif len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        raise InvalidGraph([GraphIssue(source, None, "", f"the text is {size_text(size)}, over the "
                                                         f"{size_text(MAX_BYTES)} limit for a style graph")])
    return _load(text, source, None if base_dir is None else Path(base_dir), files)


def parse_duration(text: str) -> Duration:
    """``"2 beats"``, ``"1 bar"``, ``"4 s"``, ``"500 ms"``, ``"3"`` (seconds) → :class:`Duration`.

    Raises :class:`ValueError` with the reason when the text is not a duration
    or is negative.
    """
    value, unit = graph_format.parse_duration(text)
    return Duration(value, unit)


# ----------------------------------------------------------------- the steps
def _load(text: str, file: str, base_dir: Path | None, files: FilePolicy | None) -> Graph:
    try:
        tree = _parse_tree(text, file)
    except RecursionError:  # cannot happen (no recursion); kept so no input can crash the caller
        raise InvalidGraph([GraphIssue(file, None, "", "nested too deeply for a style graph")]) from None
    soft = tree.issues
    found = graph_format.validate(tree.data, spelling=tree.spelling, lines=tree.lines,
                                  max_issues=MAX_ISSUES - len(soft))
    if found and found[0].final:
        raise InvalidGraph([_issue(file, tree, found[0])])
    issues = [*soft, *(_issue(file, tree, i) for i in found)]
    if found and found[-1].whole:  # stopped after too many problems
        issues[-1] = GraphIssue(file, None, "", f"stopped after {MAX_ISSUES} problems")
        raise InvalidGraph(issues)
    files_read = _AudioFiles(file, base_dir, files, tree, {i.path for i in found})
    issues += files_read.check(tree.data)
    if issues:
        raise InvalidGraph(issues)
    graph = to_graph(tree.data, source=file, name="" if file.startswith("<") else Path(file).stem,
                     spelling=tree.spelling, audio_path=files_read.resolved, audio=files_read.audio,
                     prompt_audio=files_read.prompt_audio)
    graph = replace(graph, lines=tree.lines)
    problems = check_runnable(graph)
    if problems:
        raise InvalidGraph(problems)
    return graph


def _issue(file: str, tree: Tree, issue: graph_format.Issue) -> GraphIssue:
    """A declaration's issue (by path) → a :class:`GraphIssue` with the line of the value or key it is about."""
    if issue.whole:
        return GraphIssue(file, None, "", issue.message)
    at = issue.path if issue.at is None else issue.at
    line = tree.key_lines.get(at) if issue.key else None
    return GraphIssue(file, line or tree.lines.get(at), issue.path, issue.message)


class _AudioFiles:
    """Reads and decodes the audio prompt and stinger files of a checked tree, once each."""

    def __init__(self, file: str, base_dir: Path | None, files: FilePolicy | None, tree: Tree,
                 bad: set[str]) -> None:
        self.file, self.base_dir, self.files, self.tree, self.bad = file, base_dir, files, tree, bad
        self.audio: dict[str, Any] = {}  # resolved stinger path → decoded PCM
        self.prompt_audio: dict[str, bytes] = {}  # resolved audio prompt path → its bytes
        self._checked: dict[tuple[str, bool], str | None] = {}  # (path as written, stinger) → resolved; None: refused
        self._stinger_frames = 0

    def check(self, data: Any) -> list[GraphIssue]:
        """Every audio file the graph names, in file order (prompts, then stingers); the issues of the bad ones."""
        issues: list[GraphIssue] = []
        if not isinstance(data, dict):
            return issues
        for section, other, stinger in (("prompts", "text", False), ("stingers", "prompt", True)):
            entries = data.get(section)
            for name, entry in entries.items() if isinstance(entries, dict) else ():
                path = f"{section}.{name}.audio"
                if (isinstance(entry, dict) and "audio" in entry and other not in entry and name.strip()
                        and path not in self.bad and isinstance(entry["audio"], str)):
                    why = self.read(entry["audio"], stinger)
                    if why is not None:
                        issues.append(GraphIssue(self.file, self.tree.lines.get(path), path, why))
        return issues

    def read(self, written: str, stinger: bool) -> str | None:
        """Reads one file (once); the reason it is refused, or None."""
        from cadenza.runtime.graph import audio

        key = (written, stinger)
        if key in self._checked:  # a refused file is reported where it is first named
            return None
        try:
            resolved, data = audio.read_audio(written, self.base_dir, self.files)
            if stinger:
                pcm = audio.decode_stinger(data, resolved)
                self._stinger_frames += pcm.shape[0]
                if self._stinger_frames > audio.MAX_STINGER_AUDIO_S * audio.SAMPLE_RATE:
                    raise audio.AudioFileError(
                        f"the graph's stinger files add up to over {audio.MAX_STINGER_AUDIO_S:g} s of audio, "
                        "more than is kept in memory for one graph: use fewer or shorter files")
                self.audio[str(resolved)] = pcm
            else:
                audio.check_audio_prompt(data, resolved)
                self.prompt_audio[str(resolved)] = data
            self._checked[key] = str(resolved)
            return None
        except audio.AudioFileError as exc:
            self._checked[key] = None
            return exc.message

    def resolved(self, written: str, stinger: bool) -> str:
        path = self._checked[written, stinger]
        assert path is not None
        return path
