"""SafeRoot and archives doing their job: every operation on a real directory tree, ranges,
quota, deny-list, disk usage with hard links, search bounds, archive round trips."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stellarstack.nodeproxy.files import (
    Denylist,
    FileError,
    FileErrorCode,
    FileType,
    Quota,
    SafeRoot,
    SearchLimits,
)
from stellarstack.nodeproxy.files.archives import (
    ArchiveFormat,
    create_archive,
    create_archive_file,
    extract_archive,
)

MIB = 1024 * 1024


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "config").mkdir(parents=True)
    (root / "world" / "region").mkdir(parents=True)
    (root / "server.properties").write_text("motd=hello\nmax-players=8\n")
    (root / "config" / "secret.yml").write_text("password: hunter2\n")
    (root / "config" / "app.yml").write_text("port: 25565\n")
    (root / "world" / "region" / "r.0.0.mca").write_bytes(bytes(range(256)) * 16)
    (root / "server.jar").write_bytes(b"PK fake jar")
    return root


@pytest.fixture
def root(tree: Path) -> Iterator[SafeRoot]:
    with SafeRoot(tree) as safe:
        yield safe


def code_of(exc: pytest.ExceptionInfo[FileError]) -> FileErrorCode:
    return exc.value.code


def leftovers(top: Path) -> list[Path]:
    return list(top.rglob(".stellarstack-*"))


# -- reading ---------------------------------------------------------------------------------


def test_list_and_stat(root: SafeRoot) -> None:
    names = [(i.name, i.type) for i in root.list_dir("")]
    assert names == [
        ("config", FileType.DIRECTORY),
        ("server.jar", FileType.FILE),
        ("server.properties", FileType.FILE),
        ("world", FileType.DIRECTORY),
    ]
    info = root.stat("world/region/r.0.0.mca")
    assert (info.size, info.type, info.path) == (4096, FileType.FILE, "world/region/r.0.0.mca")
    assert root.stat("").type is FileType.DIRECTORY
    assert root.stat("./config//app.yml").path == "config/app.yml"
    assert root.stat("/config/app.yml").path == "config/app.yml"
    for spelling in ("", ".", "/", "//", "./", "/."):
        assert root.stat(spelling).path == ""
        assert [i.name for i in root.list_dir(spelling)] == [n for n, _ in names]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("../x", FileErrorCode.BAD_PATH),
        ("/../etc/passwd", FileErrorCode.BAD_PATH),
        # A leading `/` is the server root: the host's /etc/passwd is never what it names.
        ("/etc/passwd", FileErrorCode.NOT_FOUND),
        ("//etc/passwd", FileErrorCode.NOT_FOUND),
        ("/", FileErrorCode.BAD_PATH),
        ("a/\x00b", FileErrorCode.BAD_PATH),
        ("a" * 256, FileErrorCode.BAD_PATH),
        ("a/" * 2100, FileErrorCode.BAD_PATH),
        ("missing.txt", FileErrorCode.NOT_FOUND),
        ("missing/x.txt", FileErrorCode.NOT_FOUND),
        ("server.properties/x", FileErrorCode.NOT_A_DIRECTORY),
        ("config", FileErrorCode.IS_A_DIRECTORY),
    ],
)
def test_bad_reads(root: SafeRoot, path: str, code: FileErrorCode) -> None:
    with pytest.raises(FileError) as caught:
        root.read_bytes(path)
    assert code_of(caught) is code


def test_ranges(root: SafeRoot) -> None:
    data = bytes(range(256)) * 16
    with root.open_read("world/region/r.0.0.mca", offset=10, length=20) as reader:
        assert (reader.size, reader.offset, reader.length) == (4096, 10, 20)
        assert reader.read(7) + b"".join(reader.chunks(5)) == data[10:30]
    with root.open_read("world/region/r.0.0.mca", offset=4000) as reader:
        assert b"".join(reader.chunks()) == data[4000:]
    with root.open_read("world/region/r.0.0.mca", offset=4090, length=100) as reader:
        assert reader.length == 6
    for offset, length in [(4097, None), (-1, None), (0, -5)]:
        with pytest.raises(FileError) as caught:
            root.open_read("world/region/r.0.0.mca", offset=offset, length=length)
        assert code_of(caught) is FileErrorCode.RANGE_NOT_SATISFIABLE


def test_read_bytes_cap(root: SafeRoot) -> None:
    with pytest.raises(FileError) as caught:
        root.read_bytes("world/region/r.0.0.mca", max_bytes=100)
    assert code_of(caught) is FileErrorCode.TOO_LARGE


# -- writing ---------------------------------------------------------------------------------


def test_write_is_atomic_and_keeps_mode(root: SafeRoot, tree: Path) -> None:
    (tree / "server.properties").chmod(0o640)
    info = root.write("server.properties", [b"motd=", b"bye\n"])
    assert (tree / "server.properties").read_bytes() == b"motd=bye\n"
    assert info.mode == 0o640
    with pytest.raises(FileError) as caught:
        root.write("new/dir/f.txt", [b"x"])
    assert code_of(caught) is FileErrorCode.NOT_FOUND
    root.mkdir("new/dir")
    assert root.write("new/dir/f.txt", [b"x"], mode=0o4777).mode == 0o777
    with pytest.raises(FileError) as caught:
        root.write("new/dir/f.txt", [b"y"], overwrite=False)
    assert code_of(caught) is FileErrorCode.EXISTS
    with pytest.raises(FileError) as caught:
        root.write("config", [b"y"])
    assert code_of(caught) is FileErrorCode.IS_A_DIRECTORY
    assert not leftovers(tree)


def test_failed_write_leaves_old_content_and_no_temp(root: SafeRoot, tree: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        root.write("server.properties", chunks())
    assert (tree / "server.properties").read_text().startswith("motd=hello")
    assert not leftovers(tree)


async def test_write_async_from_an_async_iterator(root: SafeRoot, tree: Path) -> None:
    async def body() -> AsyncIterator[bytes]:
        for part in (b"a" * 1000, b"b" * 1000):
            yield part

    info = await root.write_async("upload.bin", body())
    assert info.size == 2000
    assert (tree / "upload.bin").read_bytes() == b"a" * 1000 + b"b" * 1000


def test_quota_refuses_and_leaves_nothing(tree: Path) -> None:
    used = {"bytes": 0}
    with SafeRoot(tree, quota=Quota(MIB, lambda: used["bytes"])) as root:
        root.write("ok.bin", [bytes(MIB // 2)])
        with pytest.raises(FileError) as caught:
            root.write("big.bin", (bytes(64 * 1024) for _ in range(32)))
        assert code_of(caught) is FileErrorCode.QUOTA_EXCEEDED
        with pytest.raises(FileError) as caught:
            root.write("declared.bin", [b""], expected_size=2 * MIB)
        assert code_of(caught) is FileErrorCode.QUOTA_EXCEEDED
        used["bytes"] = MIB - 100
        with pytest.raises(FileError) as caught:
            root.copy("world", "world2")
        assert code_of(caught) is FileErrorCode.QUOTA_EXCEEDED
        with pytest.raises(FileError) as caught:
            root.copy("world/region/r.0.0.mca", "copy.mca")
        assert code_of(caught) is FileErrorCode.QUOTA_EXCEEDED
    assert not (tree / "big.bin").exists()
    assert not (tree / "world2").exists()
    assert not (tree / "copy.mca").exists()
    assert not leftovers(tree)


def test_quota_from_disk_usage(tree: Path) -> None:
    with SafeRoot(tree, quota_bytes=SafeRoot(tree).disk_usage().bytes + 64 * 1024) as root:
        root.write("small.bin", [bytes(1000)])
        with pytest.raises(FileError) as caught:
            root.write("big.bin", [bytes(MIB)])
        assert code_of(caught) is FileErrorCode.QUOTA_EXCEEDED


# -- directories, moves, copies, deletes -------------------------------------------------------


def test_mkdir(root: SafeRoot, tree: Path) -> None:
    assert root.mkdir("a/b/c").type is FileType.DIRECTORY
    root.mkdir("a/b/c")  # -p: fine twice
    with pytest.raises(FileError) as caught:
        root.mkdir("a/b/c", parents=False)
    assert code_of(caught) is FileErrorCode.EXISTS
    with pytest.raises(FileError) as caught:
        root.mkdir("server.properties/x")
    assert code_of(caught) is FileErrorCode.NOT_A_DIRECTORY
    with pytest.raises(FileError) as caught:
        root.mkdir("")
    assert code_of(caught) is FileErrorCode.BAD_PATH


def test_rename(root: SafeRoot, tree: Path) -> None:
    root.mkdir("backup")
    assert root.rename("world", "backup/world").type is FileType.DIRECTORY
    assert (tree / "backup/world/region/r.0.0.mca").exists()
    with pytest.raises(FileError) as caught:
        root.rename("config/app.yml", "server.properties")
    assert code_of(caught) is FileErrorCode.EXISTS
    root.rename("config/app.yml", "server.properties", overwrite=True)
    assert (tree / "server.properties").read_text() == "port: 25565\n"
    with pytest.raises(FileError) as caught:
        root.rename("server.properties", "backup", overwrite=True)
    assert code_of(caught) is FileErrorCode.IS_A_DIRECTORY
    with pytest.raises(FileError) as caught:
        root.rename("backup", "backup/inner")
    assert code_of(caught) is FileErrorCode.BAD_PATH
    with pytest.raises(FileError) as caught:
        root.rename("nope", "x")
    assert code_of(caught) is FileErrorCode.NOT_FOUND


def test_copy(root: SafeRoot, tree: Path) -> None:
    (tree / "world" / "region" / "r.0.0.mca").chmod(0o4750)
    report = root.copy("world", "world-copy")
    copied = tree / "world-copy" / "region" / "r.0.0.mca"
    assert copied.read_bytes() == (tree / "world/region/r.0.0.mca").read_bytes()
    assert stat.S_IMODE(copied.stat().st_mode) == 0o750
    assert report.info.type is FileType.DIRECTORY
    with pytest.raises(FileError) as caught:
        root.copy("world", "world-copy")
    assert code_of(caught) is FileErrorCode.EXISTS
    with pytest.raises(FileError) as caught:
        root.copy("world", "world/inside")
    assert code_of(caught) is FileErrorCode.BAD_PATH
    root.copy("server.properties", "sp.bak")
    assert (tree / "sp.bak").read_text().startswith("motd=hello")
    assert not leftovers(tree)


def test_delete(root: SafeRoot, tree: Path) -> None:
    root.delete("server.properties")
    root.delete("world")
    assert sorted(p.name for p in tree.iterdir()) == ["config", "server.jar"]
    with pytest.raises(FileError) as caught:
        root.delete("")
    assert code_of(caught) is FileErrorCode.BAD_PATH
    with pytest.raises(FileError) as caught:
        root.delete("world")
    assert code_of(caught) is FileErrorCode.NOT_FOUND


def test_delete_deep_tree(root: SafeRoot, tree: Path) -> None:
    root.mkdir("/".join(["d"] * 100))
    root.delete("d")
    assert not (tree / "d").exists()


def test_chmod_and_mtime(root: SafeRoot, tree: Path) -> None:
    assert root.chmod("server.properties", 0o6755).mode == 0o755
    assert stat.S_IMODE((tree / "server.properties").stat().st_mode) == 0o755
    assert root.chmod("config", 0o1700).mode == 0o700
    assert root.set_mtime("server.properties", 1_000_000).mtime == 1_000_000
    with pytest.raises(FileError) as caught:
        root.chmod("", 0o777)
    assert code_of(caught) is FileErrorCode.BAD_PATH


# -- deny-list -------------------------------------------------------------------------------


@pytest.fixture
def guarded(tree: Path) -> Iterator[SafeRoot]:
    with SafeRoot(tree, denylist=Denylist.of(["*.jar", "config/secret.yml"])) as safe:
        yield safe


DENIED_OPS = {
    "read": lambda r: r.read_bytes("server.jar"),
    "stat": lambda r: r.stat("config/secret.yml"),
    "write": lambda r: r.write("server.jar", [b"x"]),
    "write_new": lambda r: r.write("mods/new.jar", [b"x"]),
    "delete": lambda r: r.delete("server.jar"),
    "delete_parent": lambda r: r.delete("config"),
    "rename_from": lambda r: r.rename("server.jar", "server.zip"),
    "rename_to": lambda r: r.rename("server.properties", "x.jar"),
    "rename_parent": lambda r: r.rename("config", "cfg"),
    "copy_from": lambda r: r.copy("server.jar", "s.zip"),
    "copy_to": lambda r: r.copy("server.properties", "s.jar"),
    "copy_parent": lambda r: r.copy("config", "cfg"),
    "chmod": lambda r: r.chmod("config/secret.yml", 0o777),
    "mkdir": lambda r: r.mkdir("plugins.jar"),
    "archive_into": lambda r: create_archive_file(
        r, ["server.properties"], "b.jar", ArchiveFormat.ZIP
    ),
}


@pytest.mark.parametrize("op", sorted(DENIED_OPS))
def test_denied_paths(guarded: SafeRoot, tree: Path, op: str) -> None:
    with pytest.raises(FileError) as caught:
        DENIED_OPS[op](guarded)
    assert code_of(caught) is FileErrorCode.DENIED
    assert (tree / "server.jar").read_bytes() == b"PK fake jar"
    assert (tree / "config" / "secret.yml").exists()


def test_denied_entries_are_listed_as_denied_and_skipped_by_search(guarded: SafeRoot) -> None:
    listed = {i.name: i.denied for i in guarded.list_dir("")}
    assert listed == {
        "config": False,
        "server.jar": True,
        "server.properties": False,
        "world": False,
    }
    assert [i.denied for i in guarded.list_dir("config")] == [False, True]
    assert guarded.search_content("hunter2").matches == []
    assert [m.path for m in guarded.search_names("*.jar").matches] == []
    assert "config/secret.yml" not in [p for p, _ in guarded.walk()]
    out = io.BytesIO()
    report = create_archive(guarded, ["config"], out, ArchiveFormat.TAR_GZ)
    assert report.skipped == ("config/secret.yml",)
    with pytest.raises(FileError) as caught:
        create_archive(guarded, ["server.jar"], out, ArchiveFormat.TAR_GZ)
    assert code_of(caught) is FileErrorCode.DENIED


# -- search and disk usage -------------------------------------------------------------------


def test_search(root: SafeRoot, tree: Path) -> None:
    assert sorted(m.path for m in root.search_names("*.YML").matches) == [
        "config/app.yml",
        "config/secret.yml",
    ]
    hits = root.search_content("MAX-players").matches
    assert [(h.path, h.line, h.preview) for h in hits] == [
        ("server.properties", 2, "max-players=8")
    ]
    assert root.search_content("\x00\x01").matches == []  # binary files are skipped
    for i in range(30):
        (tree / f"log{i}.txt").write_text("needle\n" * 3)
    limited = root.search_content("needle", limits=SearchLimits(max_results=5))
    assert (len(limited.matches), limited.truncated) == (5, True)
    few_files = root.search_names("*", limits=SearchLimits(max_files=3))
    assert (len(few_files.matches), few_files.truncated) == (3, True)
    nothing = root.search_names("*", limits=SearchLimits(time_budget_s=0))
    assert nothing.truncated
    capped = root.search_content("needle", limits=SearchLimits(max_bytes_per_file=3))
    assert capped.matches == []


def test_disk_usage_counts_hard_links_once_and_never_follows_links(
    tmp_path: Path, tree: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "huge.bin").write_bytes(bytes(4 * MIB))
    with SafeRoot(tree) as root:
        before = root.disk_usage()
        (tree / "big.bin").write_bytes(os.urandom(MIB))
        os.link(tree / "big.bin", tree / "big-link.bin")
        (tree / "out").symlink_to(outside)
        after = root.disk_usage()
    grown = after.bytes - before.bytes
    assert MIB <= grown < MIB + 64 * 1024
    assert after.files == before.files + 2  # big.bin and the symlink; the hard link once
    expected = int(
        subprocess.run(
            ["du", "-s", "-B1", str(tree)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    assert after.bytes == expected


# -- archives --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [ArchiveFormat.TAR_GZ, ArchiveFormat.TAR_ZST, ArchiveFormat.ZIP])
def test_archive_round_trip(root: SafeRoot, tree: Path, fmt: ArchiveFormat) -> None:
    (tree / "config" / "app.yml").chmod(0o600)
    os.utime(tree / "config" / "app.yml", (1_600_000_000, 1_600_000_000))
    report = create_archive_file(
        root, ["config", "world", "server.properties"], f"backup.{fmt.value}", fmt
    )
    assert report.entries == 7
    assert report.skipped == ()
    extracted = extract_archive(root, f"backup.{fmt.value}", "restored")
    assert extracted.bytes == report.bytes
    for rel in ("config/app.yml", "world/region/r.0.0.mca", "server.properties"):
        assert (tree / "restored" / rel).read_bytes() == (tree / rel).read_bytes()
    app = (tree / "restored/config/app.yml").stat()
    assert stat.S_IMODE(app.st_mode) == 0o600
    assert abs(app.st_mtime - 1_600_000_000) <= 2
    assert not leftovers(tree)


def test_archive_relative_to_base(root: SafeRoot) -> None:
    out = io.BytesIO()
    create_archive(root, ["world/region"], out, ArchiveFormat.ZIP, base="world")
    assert zipfile.ZipFile(io.BytesIO(out.getvalue())).namelist() == [
        "region/",
        "region/r.0.0.mca",
    ]
    with pytest.raises(FileError) as caught:
        create_archive(root, ["config"], io.BytesIO(), ArchiveFormat.ZIP, base="world")
    assert code_of(caught) is FileErrorCode.BAD_PATH


def test_extract_merges_and_overwrites(root: SafeRoot, tree: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in [("config/app.yml", b"port: 1\n"), ("config/new.yml", b"new\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tree / "update.tar.xz").write_bytes(buf.getvalue())
    with pytest.raises(FileError) as caught:
        extract_archive(root, "update.tar.xz", "", overwrite=False)
    assert code_of(caught) is FileErrorCode.EXISTS
    assert (tree / "config/app.yml").read_text() == "port: 25565\n"
    extract_archive(root, "update.tar.xz", "")
    assert (tree / "config/app.yml").read_text() == "port: 1\n"
    assert (tree / "config/new.yml").read_text() == "new\n"
    assert (tree / "config/secret.yml").exists()
    assert not leftovers(tree)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")
def test_extracts_what_tar_and_zstd_produce(root: SafeRoot, tree: Path) -> None:
    subprocess.run(
        ["tar", "-I", "zstd", "-cf", "cli.tar.zst", "config", "world"],
        cwd=tree,
        check=True,
        timeout=60,
    )
    extract_archive(root, "cli.tar.zst", "from-cli")
    assert (tree / "from-cli/world/region/r.0.0.mca").read_bytes() == (
        tree / "world/region/r.0.0.mca"
    ).read_bytes()
    out = tree / "ours.tar.zst"
    with out.open("wb") as fh:
        create_archive(root, ["config"], fh, ArchiveFormat.TAR_ZST)
    listing = subprocess.run(
        ["tar", "-I", "zstd", "-tf", str(out)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listing) == ["config/", "config/app.yml", "config/secret.yml"]


def test_created_entries_belong_to_the_server_user(tree: Path) -> None:
    owner = (4321, 4321)
    with SafeRoot(tree, owner=owner) as root:
        root.write("new.txt", [b"x"])
        root.mkdir("made/deep")
        root.copy("world", "world2")
        create_archive_file(root, ["config"], "c.zip", ArchiveFormat.ZIP)
        extract_archive(root, "c.zip", "unzipped")
    for rel in (
        "new.txt",
        "made",
        "made/deep",
        "world2",
        "world2/region/r.0.0.mca",
        "c.zip",
        "unzipped/config",
        "unzipped/config/app.yml",
    ):
        st = (tree / rel).stat()
        assert (st.st_uid, st.st_gid) == owner, rel
