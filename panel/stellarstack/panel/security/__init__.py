"""Passwords, TOTP and random tokens."""
