"""The StellarStack resource API: models, validation and pure domain logic (no I/O)."""
