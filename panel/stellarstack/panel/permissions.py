"""Permission nodes of subusers and scopes of API keys (pure).

A server's owner and admins hold every node. A subuser holds the nodes the owner granted,
written exactly (`files.read`) or as a category wildcard (`files.*`). An API key acts as its
user, narrowed to its scopes: a request needs both the user's permission node and the scope that
node maps to.
"""

from __future__ import annotations

from collections.abc import Iterable

# Category -> nodes, each with what it allows. The order is the order the panel shows them in.
PERMISSION_NODES: dict[str, dict[str, str]] = {
    "control": {
        "control.start": "Start the server.",
        "control.stop": "Stop the server.",
        "control.restart": "Restart the server.",
        "control.kill": "Kill the server's process without a graceful stop.",
    },
    "console": {
        "console.read": "See the console output and live resource usage.",
        "console.write": "Send commands to the console.",
    },
    "files": {
        "files.read": "List directories and see file metadata.",
        "files.read-content": "Read and download file contents.",
        "files.create": "Create files and directories, upload.",
        "files.update": "Change, rename, move and chmod files.",
        "files.delete": "Delete files and directories.",
        "files.archive": "Create and extract archives.",
        "files.pull": "Download files from a URL into the server.",
        "files.sftp": "Log in over SFTP (with the file nodes above applying).",
    },
    "backups": {
        "backups.read": "List backups.",
        "backups.create": "Create backups.",
        "backups.delete": "Delete backups.",
        "backups.download": "Download backup archives.",
        "backups.restore": "Restore a backup (replaces the server's files).",
        "backups.lock": "Lock and unlock backups against deletion and rotation.",
    },
    "allocations": {
        "allocations.read": "See the server's addresses and ports.",
        "allocations.create": "Add ports from the node's free allocations.",
        "allocations.update": "Change notes and the primary port.",
        "allocations.delete": "Remove ports from the server.",
    },
    "startup": {
        "startup.read": "See the startup command and variables.",
        "startup.update": "Change user-editable variables.",
        "startup.image": "Choose among the blueprint's images.",
    },
    "settings": {
        "settings.rename": "Rename the server and change its description.",
        "settings.reinstall": "Reinstall the server.",
        "settings.read": "See the server's settings and limits.",
    },
    "activity": {
        "activity.read": "See the server's activity log.",
    },
    "webhooks": {
        "webhooks.read": "See the server's webhooks and their delivery history.",
        "webhooks.create": "Add webhooks for the server's events.",
        "webhooks.update": "Change webhooks, rotate their secrets, test and redeliver.",
        "webhooks.delete": "Delete webhooks.",
    },
    "schedules": {
        "schedules.read": "See schedules.",
        "schedules.create": "Create schedules.",
        "schedules.update": "Change schedules and their tasks.",
        "schedules.delete": "Delete schedules.",
        "schedules.run": "Run a schedule now.",
    },
    "users": {
        "users.read": "See the server's subusers.",
        "users.create": "Invite subusers.",
        "users.update": "Change subusers' permissions.",
        "users.delete": "Remove subusers.",
    },
    "database": {
        "database.read": "See the server's databases.",
        "database.create": "Create databases.",
        "database.update": "Rotate database passwords.",
        "database.delete": "Delete databases.",
        "database.view-password": "See database passwords.",
    },
    "split": {
        "split.read": "See servers split off this one.",
        "split.create": "Split resources off into a new server.",
        "split.delete": "Merge a split server back.",
    },
}

ALL_NODES: frozenset[str] = frozenset(node for nodes in PERMISSION_NODES.values() for node in nodes)

# API key scopes. `*` is every scope.
SCOPES: dict[str, str] = {
    "account:read": "Read the account, its sessions and keys.",
    "account:write": "Change the account.",
    "servers:read": "List servers and read their details, allocations, startup and activity.",
    "servers:write": "Create, change, reinstall and delete servers; manage subusers.",
    "power:control": "Start, stop, restart and kill servers.",
    "console:read": "Read console output and resource usage.",
    "console:write": "Send console commands.",
    "files:read": "List and read files.",
    "files:write": "Create, change, delete and archive files.",
    "backups:read": "List and download backups.",
    "backups:create": "Create, lock and restore backups.",
    "backups:delete": "Delete backups.",
    "schedules:read": "Read schedules.",
    "schedules:write": "Create, change, run and delete schedules.",
    "webhooks:read": "Read webhooks and their deliveries.",
    "webhooks:write": "Create, change and delete webhooks.",
    "admin:read": "Read nodes, locations, blueprints, users and the audit log (admins).",
    "admin:write": "Change nodes, locations, blueprints and users (admins).",
}
ALL_SCOPES: frozenset[str] = frozenset(SCOPES)
WILDCARD = "*"

# Which scope an API key needs for a permission node.
_SCOPE_OF_CATEGORY = {
    "allocations": ("servers:read", "servers:write"),
    "startup": ("servers:read", "servers:write"),
    "settings": ("servers:read", "servers:write"),
    "activity": ("servers:read", "servers:read"),
    "users": ("servers:read", "servers:write"),
    "database": ("servers:read", "servers:write"),
    "split": ("servers:read", "servers:write"),
    "schedules": ("schedules:read", "schedules:write"),
    "webhooks": ("webhooks:read", "webhooks:write"),
}
_SCOPE_OF_NODE = {
    "console.read": "console:read",
    "console.write": "console:write",
    "files.read": "files:read",
    "files.read-content": "files:read",
    "files.sftp": "files:read",
    "backups.read": "backups:read",
    "backups.download": "backups:read",
    "backups.create": "backups:create",
    "backups.restore": "backups:create",
    "backups.lock": "backups:create",
    "backups.delete": "backups:delete",
}


def scope_for(node: str) -> str:
    """The API key scope that covers permission node `node`."""
    if node not in ALL_NODES:
        raise KeyError(f"unknown permission node {node!r}")
    if node in _SCOPE_OF_NODE:
        return _SCOPE_OF_NODE[node]
    category, _, action = node.partition(".")
    if category == "control":
        return "power:control"
    if category == "files":
        return "files:write"
    read_scope, write_scope = _SCOPE_OF_CATEGORY[category]
    return read_scope if action == "read" else write_scope


def expand(granted: Iterable[str]) -> frozenset[str]:
    """The concrete nodes a list of granted nodes and wildcards covers."""
    nodes: set[str] = set()
    for entry in granted:
        if entry == WILDCARD:
            return ALL_NODES
        if entry.endswith(".*"):
            nodes.update(PERMISSION_NODES.get(entry[:-2], {}))
        elif entry in ALL_NODES:
            nodes.add(entry)
    return frozenset(nodes)


def invalid_nodes(granted: Iterable[str]) -> list[str]:
    """Entries that are neither a node, a category wildcard nor `*` (for error messages)."""
    return [
        entry
        for entry in granted
        if entry != WILDCARD
        and entry not in ALL_NODES
        and not (entry.endswith(".*") and entry[:-2] in PERMISSION_NODES)
    ]


def invalid_scopes(scopes: Iterable[str]) -> list[str]:
    return [scope for scope in scopes if scope != WILDCARD and scope not in ALL_SCOPES]


def scopes_allow(scopes: Iterable[str], needed: str) -> bool:
    """Whether an API key with `scopes` may do what `needed` covers."""
    held = set(scopes)
    return WILDCARD in held or needed in held
