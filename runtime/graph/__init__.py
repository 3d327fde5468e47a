"""Style graphs: authored files that turn game state and sensor values into prompt weights and controls.

``spec`` is the in-memory model, ``loader`` reads and validates YAML/JSON into
it (every error with file, line and path), ``engine`` evaluates it at a fixed
control rate, deterministically.
"""
