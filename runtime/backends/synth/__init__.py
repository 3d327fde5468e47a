"""The embedded ``synth`` backend: a procedural, CPU-only music engine with numba DSP.

It reads the same prompts and controls a model would (through an interpretable
style space and a vocabulary of musical words), renders drums, bass, pads,
keys, plucks, lead and texture on a tempo grid, and knows its exact beats.
"""

from cadenza.runtime.backends.synth.engine import SynthBackend, SynthState

__all__ = ["SynthBackend", "SynthState"]
