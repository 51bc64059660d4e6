"""A server root with a hostile neighbour: an `outside` directory whose every byte, mode and
time is recorded, so a test can prove an operation never touched it."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

SECRET = b"OUTSIDE-SECRET-CANARY\n"
"""Content of every canary file outside the root; no read through the root may return it."""


def snapshot(top: Path, *, dir_mtimes: bool = True) -> dict[str, tuple[object, ...]]:
    """Every entry under `top` (and `top` itself): type, mode, size, mtime, content hash or
    link text - never following links. Without `dir_mtimes`, directories' mtimes are left out
    (a refused extraction creates and removes its staging directory, touching the parent)."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in ["", *dirnames, *filenames]:
            path = Path(dirpath, name) if name else Path(dirpath)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                detail: object = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            else:
                detail = None
            mtime = st.st_mtime_ns if dir_mtimes or not stat.S_ISDIR(st.st_mode) else None
            size = st.st_size if not stat.S_ISDIR(st.st_mode) else None
            out[str(path.relative_to(top))] = (st.st_mode, size, mtime, detail)
    return out


@dataclass
class Sandbox:
    """`root` is the server root, `outside` its sibling holding canaries."""

    root: Path
    outside: Path

    @classmethod
    def create(cls, base: Path) -> Sandbox:
        """Lay out root/ and outside/ (canary file, canary dir with a file, same names as
        files inside the root so a followed link would hit them)."""
        root = base / "root"
        outside = base / "outside"
        root.mkdir()
        (outside / "dir").mkdir(parents=True)
        for rel in ("canary.txt", "f.txt", "dir/canary.txt", "dir/f.txt"):
            (outside / rel).write_bytes(SECRET)
            (outside / rel).chmod(0o640)
        return cls(root, outside)

    def snapshot_outside(self) -> dict[str, tuple[object, ...]]:
        """See `snapshot`."""
        return snapshot(self.outside)

    def snapshot_root(self) -> dict[str, tuple[object, ...]]:
        """See `snapshot` (the root's own entry is left out: its mtime changes with staging)."""
        snap = snapshot(self.root, dir_mtimes=False)
        snap.pop(".", None)
        return snap
