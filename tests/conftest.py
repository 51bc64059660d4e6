"""Fixtures shared by every tier; each plugin module documents its own."""

pytest_plugins = [
    "support.docker_engine",
    "support.kube",
    "support.postgres",
    "support.panel",
    "support.nodeproxy_process",
]
