"""The Cadenza wire contract (protobuf package ``cadenza.v1``).

The ``.proto`` files and their generated modules live in this folder; one
module of the package owns serialization.
"""
