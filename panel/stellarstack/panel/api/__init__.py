"""The panel's HTTP API (FastAPI)."""
