"""Runtimes of the node agent (the Docker engine today)."""
