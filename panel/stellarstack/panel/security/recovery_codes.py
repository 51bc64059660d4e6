"""Two-factor recovery codes: what is shown to the user once, and how it is compared.

A code is 16 characters from a 31-letter alphabet (79 bits), so one fast hash is enough to
store it: nobody can try 2**79 guesses against a leaked table, and the login step is rate
limited anyway.
"""

from __future__ import annotations

import secrets

from stellarstack.panel.security.tokens import hash_token

COUNT = 10
GROUPS = 4
GROUP_LENGTH = 4
# No 0/o, 1/l/i: codes are read off paper and typed by hand.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_recovery_codes(count: int = COUNT) -> list[str]:
    """`count` distinct codes formatted for reading, like `k7qm-2xwe-94ht-vzab`."""
    codes: set[str] = set()
    while len(codes) < count:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH))
        codes.add("-".join(raw[i : i + GROUP_LENGTH] for i in range(0, len(raw), GROUP_LENGTH)))
    return sorted(codes)


def normalise_recovery_code(code: str) -> str:
    """The code as stored: lower case, without the dashes and spaces people type or omit."""
    return "".join(ch for ch in code.lower() if ch not in "- \t")


def hash_recovery_code(code: str) -> str:
    return hash_token(normalise_recovery_code(code))
