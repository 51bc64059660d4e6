"""Service functions: what the routes do, with keyword-only arguments and no HTTP types."""
