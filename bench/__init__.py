"""Cadenza's benchmarks and soak (``make bench``, ``make soak``): real processes, real sockets, medians."""
