"""Tooling around the product: the host-mode stack, the command-line client,
the demo and the benchmark. None of it is deployed."""
