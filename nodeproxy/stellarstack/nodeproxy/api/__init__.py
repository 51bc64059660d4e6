"""The node API: what the panel (and, with short-lived tokens, browsers) talk to."""
