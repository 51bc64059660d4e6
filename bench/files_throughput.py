"""Throughput of the confined file layer against the plain tools, in the same run.

- download: read a file through `SafeRoot.open_read` in chunks vs `cat file > /dev/null`
- upload:   write a file through `SafeRoot.write` (temp + rename) vs `cp`
- archive:  `create_archive_file` / `extract_archive` (tar.zst) vs `tar -I zstd -c` / `-x`

Each figure is the best of a few runs with a warm page cache; ratios are our time divided by
the tool's (1.0 = as fast, 2.0 = twice as slow). Everything lives in one temporary directory
that is removed at the end. Usage: python bench/files_throughput.py [--mib 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from stellarstack.nodeproxy.files import SafeRoot
from stellarstack.nodeproxy.files.archives import (
    ArchiveFormat,
    create_archive_file,
    extract_archive,
)

MIB = 1024 * 1024
CHUNK = MIB


def best_of(runs: int, action: Callable[[], object], reset: Callable[[], object]) -> float:
    """Fastest wall time of `runs` runs; `reset` (untimed) runs before each."""
    best = float("inf")
    for _ in range(runs):
        reset()
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def sh(*argv: str, cwd: Path | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, timeout=600, stdout=subprocess.DEVNULL)


def report(label: str, ours: float, theirs: float, tool: str, mib: float) -> None:
    print(
        f"{label:<9} ours {mib / ours:8.0f} MiB/s   {tool:<14} {mib / theirs:8.0f} MiB/s"
        f"   ratio {ours / theirs:5.2f}x"
    )


def make_tree(top: Path, total_mib: int) -> None:
    """Compressible files (base64 of random bytes, ~6 bits of entropy per byte)."""
    top.mkdir()
    files = max(total_mib // 4, 1)
    for i in range(files):
        (top / f"part{i:03d}.txt").write_bytes(base64.b64encode(os.urandom(3 * MIB))[: 4 * MIB])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (best counts)")
    args = parser.parse_args()
    size_mib: int = args.mib
    runs: int = max(args.runs, 1)

    with tempfile.TemporaryDirectory(prefix="stellarstack-bench-") as tmp:
        base = Path(tmp)
        root_dir = base / "root"
        root_dir.mkdir()
        src = root_dir / "big.bin"
        with src.open("wb") as fh:
            for _ in range(size_mib):
                fh.write(os.urandom(MIB))
        print(f"files_throughput: {size_mib} MiB file, best of {runs} runs")
        with SafeRoot(root_dir) as root:

            def download() -> None:
                with root.open_read("big.bin") as reader:
                    for _chunk in reader.chunks(CHUNK):
                        pass

            def cat() -> None:
                with open(os.devnull, "wb") as null:
                    subprocess.run(["cat", str(src)], stdout=null, check=True, timeout=600)

            nothing: Callable[[], object] = lambda: None  # noqa: E731
            report(
                "download",
                best_of(runs, download, nothing),
                best_of(runs, cat, nothing),
                "cat",
                size_mib,
            )

            def source_chunks() -> Iterator[bytes]:
                with src.open("rb", buffering=0) as fh:
                    while chunk := fh.read(CHUNK):
                        yield chunk

            def upload() -> None:
                root.write("upload.bin", source_chunks())

            def cp() -> None:
                sh("cp", str(src), str(root_dir / "cp.bin"))

            def drop_copies() -> None:
                for name in ("upload.bin", "cp.bin"):
                    (root_dir / name).unlink(missing_ok=True)

            report(
                "upload",
                best_of(runs, upload, drop_copies),
                best_of(runs, cp, drop_copies),
                "cp",
                size_mib,
            )
            drop_copies()
            src.unlink()

            if shutil.which("zstd") is None:
                print("archive   skipped: zstd is not installed")
                return
            make_tree(root_dir / "tree", size_mib)

            def ours_create() -> None:
                create_archive_file(root, ["tree"], "ours.tar.zst", ArchiveFormat.TAR_ZST)

            def tar_create() -> None:
                sh("tar", "-I", "zstd", "-cf", "tar.tar.zst", "tree", cwd=root_dir)

            def drop_archives() -> None:
                for name in ("ours.tar.zst", "tar.tar.zst"):
                    (root_dir / name).unlink(missing_ok=True)

            report(
                "create",
                best_of(runs, ours_create, drop_archives),
                best_of(runs, tar_create, drop_archives),
                "tar -I zstd",
                size_mib,
            )
            ours_create()
            tar_create()

            def drop_extracted() -> None:
                for name in ("out-ours", "out-tar"):
                    shutil.rmtree(root_dir / name, ignore_errors=True)

            def ours_extract() -> None:
                extract_archive(root, "ours.tar.zst", "out-ours")

            def tar_extract() -> None:
                (root_dir / "out-tar").mkdir()
                sh("tar", "-I", "zstd", "-xf", "../tar.tar.zst", cwd=root_dir / "out-tar")

            report(
                "extract",
                best_of(runs, ours_extract, drop_extracted),
                best_of(runs, tar_extract, drop_extracted),
                "tar -I zstd",
                size_mib,
            )


if __name__ == "__main__":
    main()
