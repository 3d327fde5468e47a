"""The runtime's bounds on the work one request can give it: each limit written once, here.

No request may delay the audio or other clients. Every input that could make
one control tick (or the control loop) do unbounded work has a limit; past it
the request is refused at once with ``TOO_LARGE`` (a count or a size) naming
the value, the limit and where it is, and nothing is applied. The README's
"Limits" section lists them; ``cadenza graph check`` and LoadGraph use the same
numbers for graphs.
"""

from __future__ import annotations

from typing import Final

#: Prompts in one mix (a SetPrompts request, or a graph's ``prompts``) and characters in one text prompt
#: (SetPrompts or a graph's prompt text): declared with the graph format, which the SDK checks too.
from cadenza.graph_format import MAX_PROMPT_CHARS as MAX_PROMPT_CHARS
from cadenza.graph_format import MAX_PROMPTS as MAX_PROMPTS
#: Entries in ``Controls.notes``: each of the 128 MIDI notes (0–127) at most once.
MAX_NOTES: Final = 128
#: Parameter values in one SetParameters request.
MAX_PARAMETER_VALUES: Final = 1_024
#: The longest ramp a SetParameters may ask for (seconds): longer is BAD_VALUE (a 1e12 s ramp would freeze a
#: parameter for good).
MAX_RAMP_S: Final = 3_600.0
#: Stingers sounding at once. A stinger that fires while this many play steals
#: the oldest voice, which fades out in STINGER_STEAL_FADE_S.
MAX_STINGER_VOICES: Final = 4
STINGER_STEAL_FADE_S: Final = 0.01
#: Seconds a LoadGraph or SetPrompts (parsing, reading files, embedding the
#: prompts) may take before it is answered TIMEOUT and nothing is applied.
LOAD_TIMEOUT_S: Final = 10.0
#: Loads whose worker is still busy past its time bound (a hung file read, say):
#: beyond this many the runtime refuses new loads until one finishes.
MAX_ABANDONED_LOADS: Final = 4
#: Warnings one Ok reply carries (the rest are counted in a last line), and the
#: characters of each: a reply always fits its size limit.
MAX_REPLY_WARNINGS: Final = 16
MAX_WARNING_CHARS: Final = 500


def bounded_warnings(warnings: list[str]) -> list[str]:
    """``warnings`` cut to :data:`MAX_REPLY_WARNINGS` lines of at most :data:`MAX_WARNING_CHARS` characters."""
    out = [w if len(w) <= MAX_WARNING_CHARS else f"{w[:MAX_WARNING_CHARS]}… ({len(w)} characters)"
           for w in warnings[:MAX_REPLY_WARNINGS]]
    if len(warnings) > MAX_REPLY_WARNINGS:
        out.append(f"… and {len(warnings) - MAX_REPLY_WARNINGS} more warnings")
    return out
