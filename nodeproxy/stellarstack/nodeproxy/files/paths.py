"""Pure path logic: splitting client paths, deny-list matching, archive entry names.

Nothing here touches the filesystem; `SafeRoot` and the archive code call these first and then
resolve the resulting components one at a time against a directory fd.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from .errors import FileError, FileErrorCode

MAX_PATH_BYTES: Final = 4096
"""Longest relative path accepted (Linux PATH_MAX)."""
MAX_COMPONENT_BYTES: Final = 255
"""Longest single name accepted (Linux NAME_MAX)."""

Parts = tuple[str, ...]


def _encoded_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def split_path(path: str) -> Parts:
    """Split a client path into its components below the server root.

    Every client path is relative to the server root, however it is spelled: `""`, `"."` and
    `"/"` all name the root itself (`()`), and a leading `/` means "from the server root"
    (`/plugins/x.jar` is `plugins/x.jar`), as users of file managers and SFTP expect. Empty
    and `.` components are dropped (`a//b/./c/` is `a/b/c`). `..`, NUL and names or paths
    longer than the kernel limits raise `FileError(BAD_PATH)`: a client path that needs
    normalising past `..` is treated as hostile rather than guessed at. Nothing here makes a
    path safe to open by itself; `SafeRoot` still walks the components without following links.
    """
    if "\x00" in path:
        raise FileError(FileErrorCode.BAD_PATH, path, "NUL byte in path")
    if _encoded_len(path) > MAX_PATH_BYTES:
        raise FileError(FileErrorCode.BAD_PATH, path[:64] + "...", "path too long")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise FileError(FileErrorCode.BAD_PATH, path, "'..' is not accepted")
        if _encoded_len(part) > MAX_COMPONENT_BYTES:
            raise FileError(FileErrorCode.BAD_PATH, path, "file name too long")
        parts.append(part)
    return tuple(parts)


def join_parts(parts: Iterable[str]) -> str:
    """The canonical relative spelling of split components (`""` for the root)."""
    return "/".join(parts)


@functools.lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a deny-list glob into a regex: `*`/`?`/`[..]` stay inside one component,
    `**` spans any number of components."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True)
class Denylist:
    """The blueprint's `fileDenylist`: glob patterns of paths users may not touch.

    Semantics (close to `.gitignore`): a pattern without `/` matches a name at any depth
    (`*.jar` denies `server.jar` and `mods/x.jar`); a pattern with `/` is anchored at the root
    (`config/secret.yml`; a leading `/` is ignored); `*` and `?` never cross `/`, `**` does.
    A path is denied when it or any of its parent directories matches, so denying a directory
    denies everything under it.
    """

    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str]) -> Denylist:
        """Build a deny-list from raw patterns (blank ones dropped, trailing `/` ignored)."""
        cleaned = (p.strip().strip("/") for p in patterns)
        return cls(tuple(p for p in cleaned if p))

    def match(self, parts: Sequence[str]) -> str | None:
        """The first pattern denying `parts` (or one of its parents), or `None`."""
        for pattern in self.patterns:
            regex = _glob_regex(pattern)
            if "/" in pattern:
                for end in range(1, len(parts) + 1):
                    if regex.fullmatch("/".join(parts[:end])):
                        return pattern
            elif any(regex.fullmatch(part) for part in parts):
                return pattern
        return None

    def is_denied(self, parts: Sequence[str]) -> bool:
        """Whether `parts` (a split relative path) is denied."""
        return self.match(parts) is not None

    def check(self, parts: Sequence[str]) -> None:
        """Raise `FileError(DENIED)` when `parts` is denied."""
        if self.patterns and self.is_denied(parts):
            raise FileError(FileErrorCode.DENIED, join_parts(parts), "path is on the deny-list")


_DRIVE = re.compile(r"^[A-Za-z]:")


def archive_entry_parts(name: str, *, max_depth: int = 64) -> Parts:
    """Check an archive member name and split it into safe relative components.

    Stricter than `split_path` because archive names come from arbitrary tools: leading `./`
    is allowed (tar writes it), but absolute names, `..` anywhere, backslashes (Windows zips
    use them as separators, so `..\\x` would be a traversal elsewhere), drive letters, NUL,
    control characters and over-long names or depths raise `FileError(UNSAFE_ARCHIVE)`.
    Returns `()` for the archive's own root (`./`).
    """

    def unsafe(why: str) -> FileError:
        return FileError(FileErrorCode.UNSAFE_ARCHIVE, name[:200], f"unsafe archive entry: {why}")

    if not name:
        raise unsafe("empty name")
    if name.startswith("/") or _DRIVE.match(name):
        raise unsafe("absolute path")
    if "\\" in name:
        raise unsafe("backslash in name")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise unsafe("control character in name")
    if _encoded_len(name) > MAX_PATH_BYTES:
        raise unsafe("path too long")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise unsafe("'..' in path")
        if _encoded_len(part) > MAX_COMPONENT_BYTES:
            raise unsafe("file name too long")
        parts.append(part)
    if len(parts) > max_depth:
        raise unsafe("too deeply nested")
    return tuple(parts)


def masked_mode(mode: int, *, directory: bool) -> int:
    """Permission bits allowed on a created file: no setuid/setgid/sticky, owner can always
    read and write (and enter, for directories) so the server can manage its own files."""
    perms = mode & 0o777
    return perms | (0o700 if directory else 0o600)


def chmod_mode(mode: int) -> int:
    """Permission bits a user may set with chmod: only the rwx bits; never setuid, setgid or
    sticky (a setuid binary in a volume is a privilege-escalation tool on the host)."""
    return mode & 0o777
