"""Style graphs: authored files that turn game state and sensor values into prompt weights and controls.

The format itself is declared once in :mod:`cadenza.graph_format`. Here:
``spec`` is the in-memory model; ``loader`` reads YAML/JSON into it (every
error with file, line and path) through ``yamlread`` (the safe reader),
the declaration's checker and ``convert``; ``runnable`` checks what the
runtime would refuse; ``schema`` keeps the committed JSON Schema current;
``engine`` evaluates a graph at a fixed control rate, deterministically.
"""
