"""``cadenza midi``: MIDI controllers, keyboards and clocks ↔ a running runtime (the optional ``midi`` extra).

Modules, one job each:

- :mod:`.ports` — python-rtmidi: choose the API (JACK or ALSA), list ports, open one (or a virtual port);
  decode the bytes that arrive.
- :mod:`.mapping` — the mapping file (YAML): MIDI message → parameter / trigger / state / ``notes`` control.
- :mod:`.bridge` — the bridge process: MIDI in → checked against the graph → coalesced per control period →
  the SDK client; the ``cadenza midi`` command line (:func:`~.bridge.add_midi_command`).
- :mod:`.learn` — MIDI learn: move a control, pick the parameter, the mapping file is written.
- :mod:`.clock` — MIDI clock out (from the heard beat grid) and clock in (tempo from an external clock).

Nothing here imports ``rtmidi`` or ``mido`` at import time: without the extra, ``cadenza midi`` says what to
install.
"""
