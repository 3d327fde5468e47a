"""Conformance vectors: the protocol's bytes, and what a correct runtime answers to them.

``manifest.json`` beside this file is the contract for clients in any
language (its format is written in ``proto/PROTOCOL.md``, "Conformance
vectors"). It holds:

- ``sessions``: request frames (hex) replayed, in order, on one DEALER against a
  freshly started ``cadenza serve`` with the session's ``serve_args``, each
  with the reply a correct runtime gives as a *pattern* over the reply
  Envelope's proto3 JSON (:func:`match`);
- ``replies``, ``events``, ``audio``: messages as bytes with their decoded
  form, for a client's decoder tests.

Every decoded message is the proto3 canonical JSON of the whole Envelope
(:func:`envelope_json`): field names as in the .proto, defaults printed,
enums by name, 64-bit integers as decimal strings, bytes as base64.

This module reads the manifest and matches patterns; ``generate`` writes the
manifest from Python definitions (deterministically); ``replay`` runs the
sessions against a live runtime. Run ``python -m cadenza.proto.vectors
--help``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "envelope_json", "frame_bytes", "load_manifest", "match"]

#: The manifest written beside this module.
MANIFEST: Final = Path(__file__).resolve().parent / "manifest.json"
FORMAT: Final = "cadenza-conformance-vectors"
#: The manifest's own format version (not the protocol's).
FORMAT_VERSION: Final = 1


def load_manifest(path: Path | str | None = None) -> dict[str, Any]:
    """The manifest (default: the committed one), checked for its format name and version."""
    where = Path(path) if path is not None else MANIFEST
    data = json.loads(where.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{where}: not a conformance-vector manifest (no \"format\": {FORMAT!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{where}: manifest format_version {data.get('format_version')!r}; this reader knows "
                         f"{FORMAT_VERSION}")
    return data


def envelope_json(message: Message) -> dict[str, Any]:
    """A message's proto3 canonical JSON as the manifest writes it (defaults printed, .proto field names)."""
    out: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                                    always_print_fields_with_no_presence=True)
    return out


def frame_bytes(spec: str | Mapping[str, Any]) -> bytes:
    """One frame of a vector: a hex string, or ``{"head": hex, "fill": "78", "count": N}`` (head + N fill bytes)."""
    if isinstance(spec, str):
        return bytes.fromhex(spec)
    head = bytes.fromhex(str(spec.get("head", "")))
    fill = bytes.fromhex(str(spec["fill"]))
    count = int(spec["count"])
    if len(fill) != 1 or count < 0:
        raise ValueError(f"a fill frame needs one fill byte and a count >= 0, got {dict(spec)!r}")
    return head + fill * count


_DEFAULTS: Final[tuple[Any, ...]] = (None, "", "0", 0, 0.0, False, [], {})


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else f"{text[:200]}… ({len(text)} characters)"


def _matcher(pattern: Any) -> tuple[str, Any] | None:
    if isinstance(pattern, dict) and len(pattern) == 1:
        (key, arg), = pattern.items()
        if isinstance(key, str) and key.startswith("$"):
            return key, arg
    return None


def match(pattern: Any, actual: Any, path: str = "") -> list[str]:
    """How ``actual`` (decoded JSON) differs from ``pattern``: one line per difference, empty when it matches.

    Objects match when every key of the pattern is present and matches (extra
    keys are fine); lists element by element with the same length; scalars by
    equality. Matchers: ``{"$present": true}`` (a non-default value),
    ``{"$absent": true}``, ``{"$contains": "text"}``, ``{"$gte": n}``,
    ``{"$lte": n}``, ``{"$includes": [pattern, ...]}`` (each matched by some
    element, in any order).
    """
    where = path or "(envelope)"
    m = _matcher(pattern)
    if m is not None:
        op, arg = m
        if op == "$present":
            return [] if actual not in _DEFAULTS else [f"{where}: expected a value, got {_show(actual)}"]
        if op == "$contains":
            if isinstance(actual, str) and str(arg) in actual:
                return []
            return [f"{where}: expected text containing {_show(arg)}, got {_show(actual)}"]
        if op in ("$gte", "$lte"):
            got, want = _number(actual), _number(arg)
            if got is None or want is None or math.isnan(got):
                return [f"{where}: expected a number {op[1:]} {_show(arg)}, got {_show(actual)}"]
            ok = got >= want if op == "$gte" else got <= want
            return [] if ok else [f"{where}: expected {'>=' if op == '$gte' else '<='} {_show(arg)}, got {_show(actual)}"]
        if op == "$includes":
            if not isinstance(actual, list):
                return [f"{where}: expected a list, got {_show(actual)}"]
            out = []
            for i, want in enumerate(arg):
                if not any(not match(want, got, f"{where}[?]") for got in actual):
                    out.append(f"{where}: no element matches {_show(want)}; the list is {_show(actual)}")
            return out
        raise ValueError(f"{where}: unknown matcher {op!r}; matchers are $present, $absent, $contains, $gte, "
                         "$lte, $includes")
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {_show(actual)}"]
        out = []
        for key, want in pattern.items():
            sub = f"{path}.{key}" if path else str(key)
            if _matcher(want) == ("$absent", True):
                if key in actual:
                    out.append(f"{sub}: expected no value, got {_show(actual[key])}")
                continue
            if key not in actual:
                out.append(f"{sub}: missing (expected {_show(want)})")
                continue
            out.extend(match(want, actual[key], sub))
        return out
    if isinstance(pattern, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {_show(actual)}"]
        if len(pattern) != len(actual):
            return [f"{where}: expected {len(pattern)} elements {_show(pattern)}, got {len(actual)}: {_show(actual)}"]
        out = []
        for i, (want, got) in enumerate(zip(pattern, actual)):
            out.extend(match(want, got, f"{where}[{i}]"))
        return out
    if pattern == actual and type(pattern) is type(actual) or (
            isinstance(pattern, (int, float)) and not isinstance(pattern, bool)
            and isinstance(actual, (int, float)) and not isinstance(actual, bool) and pattern == actual):
        return []
    return [f"{where}: expected {_show(pattern)}, got {_show(actual)}"]


def _frames(vector: Mapping[str, Any]) -> list[bytes]:
    frames: Sequence[Any] = vector["frames"]
    return [frame_bytes(f) for f in frames]
