"""The Cadenza runtime: backends, mixing, sinks, offline render and the CLI.

Data flows one way: inputs → graph → conductor → backend → mixer → sinks.
Nothing here is imported by ``cadenza.sdk``.
"""
