"""The web panel: accounts, permissions, servers on both backends, audit and webhooks."""
