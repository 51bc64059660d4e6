"""The node API's file manager over the confined file layer (in-process ASGI, real files)."""

from __future__ import annotations

import copy
import io
import os
import tarfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stellarstack.api.blueprint import Blueprint
from stellarstack.api.gameserver import GameServer
from stellarstack.api.runtime import ServerKey
from stellarstack.api.workload import WorkloadSettings
from stellarstack.nodeproxy.agent import NodeAgent
from stellarstack.nodeproxy.api.app import NodeServices, create_app
from stellarstack.nodeproxy.runtime.containers import DockerSettings
from stellarstack.nodeproxy.runtime.docker import DockerRuntime
from stellarstack.nodeproxy.settings import NodeSettings
from stellarstack.nodeproxy.store import Store
from support.runtime_harness import TOY_BLUEPRINT

TOKEN = "t" * 48
BASE = "/api/v1/namespaces/files/gameservers/fm/files"


@pytest.fixture
async def api(docker_client: Any, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Path]]:
    settings = NodeSettings(token=TOKEN, data_dir=tmp_path / "node")  # type: ignore[arg-type]
    store = Store(settings.state_file)
    runtime = DockerRuntime(
        docker_client,
        DockerSettings(
            data_root=settings.servers_dir,
            agent_id=f"files-{uuid.uuid4().hex[:6]}",
            workload=WorkloadSettings(),
        ),
    )
    blueprint = copy.deepcopy(TOY_BLUEPRINT)
    blueprint["spec"]["fileDenylist"] = ["*.secret"]
    store.put(Blueprint.model_validate(blueprint))
    store.put(
        GameServer.model_validate(
            {
                "kind": "GameServer",
                "metadata": {"name": "fm", "namespace": "files"},
                "spec": {"blueprint": "toy", "resources": {"disk": "100Mi"}},
            }
        )
    )
    runtime.prepare_data_dir(ServerKey("files", "fm"))
    app = create_app(NodeServices(settings, store, runtime, NodeAgent(store, runtime)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://node", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client, settings.servers_dir / "files" / "fm"
    store.close()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "canary.txt").write_text("do not touch")
    return directory


async def test_upload_list_download_and_ranges(api: Any) -> None:
    client, data = api
    put = await client.put(
        f"{BASE}/content", params={"path": "config/server.cfg"}, content=b"0123456789"
    )
    assert put.status_code == 201, put.text
    assert (data / "config" / "server.cfg").stat().st_uid == 1000
    listing = (await client.get(f"{BASE}/list", params={"path": "config"})).json()
    assert [(e["name"], e["type"], e["size"]) for e in listing] == [("server.cfg", "file", 10)]
    whole = await client.get(f"{BASE}/content", params={"path": "config/server.cfg"})
    assert whole.content == b"0123456789"
    part = await client.get(
        f"{BASE}/content", params={"path": "config/server.cfg"}, headers={"Range": "bytes=2-5"}
    )
    assert (part.status_code, part.content) == (206, b"2345")
    assert part.headers["content-range"] == "bytes 2-5/10"
    tail = await client.get(
        f"{BASE}/content", params={"path": "config/server.cfg"}, headers={"Range": "bytes=-3"}
    )
    assert tail.content == b"789"
    beyond = await client.get(
        f"{BASE}/content", params={"path": "config/server.cfg"}, headers={"Range": "bytes=50-"}
    )
    assert beyond.status_code == 416


async def test_mkdir_rename_copy_chmod_search_delete(api: Any) -> None:
    client, data = api
    assert (await client.post(f"{BASE}/mkdir", json={"path": "a/b"})).status_code == 201
    await client.put(f"{BASE}/content", params={"path": "a/b/f.txt"}, content=b"hello world")
    moved = await client.post(
        f"{BASE}/rename", json={"source": "a/b/f.txt", "destination": "a/g.txt"}
    )
    assert moved.json()["path"] == "a/g.txt"
    clash = await client.post(f"{BASE}/rename", json={"source": "a/g.txt", "destination": "a/b"})
    assert clash.status_code == 409
    assert (await client.post(f"{BASE}/copy", json={"source": "a", "destination": "c"})).json()[
        "type"
    ] == "directory"
    chmod = await client.post(f"{BASE}/chmod", json={"path": "c/g.txt", "mode": 0o4755})
    assert chmod.json()["mode"] == "0o755"  # setuid masked off
    found = (await client.get(f"{BASE}/search", params={"query": "*.txt"})).json()
    assert sorted(m["path"] for m in found["matches"]) == ["a/g.txt", "c/g.txt"]
    lines = (await client.get(f"{BASE}/search", params={"query": "world", "content": True})).json()
    assert len(lines["matches"]) == 2
    assert (await client.post(f"{BASE}/delete", json={"paths": ["a", "c"]})).status_code == 204
    assert sorted(os.listdir(data)) == []


@pytest.mark.parametrize(
    "path",
    ["../outside/canary.txt", "/../outside/canary.txt", "//../etc/passwd", "a/../../x", "a\x00b"],
)
async def test_bad_paths_are_refused(api: Any, path: str) -> None:
    client, _ = api
    response = await client.get(f"{BASE}/content", params={"path": path})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_path"


@pytest.mark.parametrize("path", ["/etc/passwd", "//etc/passwd", "/proc/self/environ"])
async def test_a_leading_slash_never_reaches_the_host(api: Any, path: str) -> None:
    client, _ = api
    response = await client.get(f"{BASE}/content", params={"path": path})
    # The server root has no etc/ or proc/: nothing found, and nothing of the host's read.
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


async def test_every_route_takes_the_root_and_leading_slashes(api: Any) -> None:
    client, data = api
    put = await client.put(f"{BASE}/content", params={"path": "/plugins/x.jar"}, content=b"jar")
    assert put.status_code == 201, put.text
    assert put.json()["path"] == "plugins/x.jar"
    assert (data / "plugins" / "x.jar").read_bytes() == b"jar"
    top = await client.put(f"{BASE}/content", params={"path": "/top.txt"}, content=b"top")
    assert top.status_code == 201, top.text
    for spelling in ["/", "", ".", "//", "/./"]:
        listing = await client.get(f"{BASE}/list", params={"path": spelling})
        assert listing.status_code == 200, (spelling, listing.text)
        assert sorted(e["name"] for e in listing.json()) == ["plugins", "top.txt"], spelling
        root_stat = await client.get(f"{BASE}/stat", params={"path": spelling})
        assert (root_stat.status_code, root_stat.json()["type"]) == (200, "directory")
    read = await client.get(f"{BASE}/content", params={"path": "/plugins/x.jar"})
    assert (read.status_code, read.content) == (200, b"jar")
    assert (await client.post(f"{BASE}/mkdir", json={"path": "/a/b"})).status_code == 201
    assert (data / "a" / "b").is_dir()
    moved = await client.post(
        f"{BASE}/rename", json={"source": "/top.txt", "destination": "/a/top.txt"}
    )
    assert (moved.status_code, moved.json()["path"]) == (200, "a/top.txt")
    copied = await client.post(f"{BASE}/copy", json={"source": "/a", "destination": "/c"})
    assert copied.status_code == 200, copied.text
    assert (data / "c" / "top.txt").read_bytes() == b"top"
    chmod = await client.post(f"{BASE}/chmod", json={"path": "/c/top.txt", "mode": 0o640})
    assert chmod.json()["mode"] == "0o640"
    found = await client.get(f"{BASE}/search", params={"query": "*.txt", "path": "/"})
    assert sorted(m["path"] for m in found.json()["matches"]) == ["a/top.txt", "c/top.txt"]
    made = await client.post(
        f"{BASE}/archive",
        json={"paths": ["/plugins"], "destination": "/plugins.tar.gz", "format": "tar.gz"},
    )
    assert made.status_code == 201, made.text
    await client.post(f"{BASE}/delete", json={"paths": ["/plugins"]})
    assert not (data / "plugins").exists()
    for destination in ["/", "", "."]:
        extracted = await client.post(
            f"{BASE}/extract", json={"archive": "/plugins.tar.gz", "destination": destination}
        )
        assert extracted.status_code == 200, extracted.text
        assert (data / "plugins" / "x.jar").read_bytes() == b"jar"
        await client.post(f"{BASE}/delete", json={"paths": ["plugins"]})
    for root_spelling in ["/", "", "."]:
        refused = await client.post(f"{BASE}/delete", json={"paths": [root_spelling]})
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "bad_path"
    assert (await client.post(f"{BASE}/delete", json={"paths": ["/a", "//c"]})).status_code == 204
    assert sorted(os.listdir(data)) == ["plugins.tar.gz"]


async def test_symlinks_out_of_the_root_are_never_followed(api: Any, outside: Path) -> None:
    client, data = api
    await client.post(f"{BASE}/mkdir", json={"path": "real"})
    (data / "escape").symlink_to(outside)
    (data / "file-link").symlink_to(outside / "canary.txt")
    for response in [
        await client.get(f"{BASE}/content", params={"path": "file-link"}),
        await client.get(f"{BASE}/content", params={"path": "escape/canary.txt"}),
        await client.get(f"{BASE}/list", params={"path": "escape"}),
        await client.put(f"{BASE}/content", params={"path": "escape/new.txt"}, content=b"x"),
        await client.put(f"{BASE}/content", params={"path": "file-link"}, content=b"x"),
        await client.post(f"{BASE}/chmod", json={"path": "file-link", "mode": 0o777}),
        await client.post(f"{BASE}/copy", json={"source": "escape", "destination": "copy"}),
    ]:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "symlink_refused"
    listing = {e["name"]: e for e in (await client.get(f"{BASE}/list")).json()}
    assert listing["escape"]["type"] == "symlink"
    assert (
        await client.post(f"{BASE}/delete", json={"paths": ["escape", "file-link"]})
    ).status_code == 204
    assert (outside / "canary.txt").read_text() == "do not touch"
    assert sorted(os.listdir(outside)) == ["canary.txt"]
    assert oct((outside / "canary.txt").stat().st_mode & 0o777) != "0o777"


async def test_deny_list_applies(api: Any) -> None:
    client, data = api
    (data / "token.secret").write_text("s3cr3t")
    read = await client.get(f"{BASE}/content", params={"path": "token.secret"})
    assert (read.status_code, read.json()["code"]) == (403, "denied")
    write = await client.put(f"{BASE}/content", params={"path": "x.secret"}, content=b"x")
    assert write.status_code == 403
    listed = {e["name"]: e["denied"] for e in (await client.get(f"{BASE}/list")).json()}
    assert listed == {"token.secret": True}


async def test_quota_refuses_and_leaves_nothing(api: Any) -> None:
    client, data = api
    with (data / "big.bin").open("wb") as big:
        big.write(os.urandom(1024) * (96 * 1024))  # 96 MiB of the 100 MiB quota
    response = await client.put(
        f"{BASE}/content", params={"path": "more.bin"}, content=b"x" * (8 * 2**20)
    )
    assert response.status_code == 507
    assert response.json()["code"] == "quota_exceeded"
    assert sorted(os.listdir(data)) == ["big.bin"]


async def test_archive_extract_and_zip_slip(api: Any, outside: Path) -> None:
    client, data = api
    await client.put(f"{BASE}/content", params={"path": "world/level.dat"}, content=b"level")
    made = await client.post(
        f"{BASE}/archive", json={"paths": ["world"], "destination": "backup.tar.zst"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["entries"] >= 1
    restored = await client.post(
        f"{BASE}/extract", json={"archive": "backup.tar.zst", "destination": "restored"}
    )
    assert restored.status_code == 200, restored.text
    assert (data / "restored" / "world" / "level.dat").read_bytes() == b"level"

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as archive:
        entry = tarfile.TarInfo("../outside/pwned.txt")
        entry.size = 5
        archive.addfile(entry, io.BytesIO(b"pwned"))
    await client.put(f"{BASE}/content", params={"path": "evil.tar"}, content=evil.getvalue())
    refused = await client.post(f"{BASE}/extract", json={"archive": "evil.tar"})
    assert refused.status_code == 422
    assert refused.json()["code"] in {"unsafe_archive", "bad_path"}
    assert sorted(os.listdir(outside)) == ["canary.txt"]
    assert not any(name.startswith(".stellarstack-") for name in os.listdir(data))


async def test_unknown_server_and_missing_token(api: Any) -> None:
    client, _ = api
    missing = await client.get("/api/v1/namespaces/files/gameservers/nope/files/list")
    assert missing.status_code == 404
    anonymous = await client.get(f"{BASE}/list", headers={"Authorization": ""})
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/x", "http://169.254.169.254/latest/", "file:///etc/passwd"]
)
async def test_pull_refuses_internal_destinations(api: Any, url: str) -> None:
    client, data = api
    response = await client.post(f"{BASE}/pull", json={"url": url, "path": "x.bin"})
    assert response.status_code == 403
    assert response.json()["detail"].startswith("refused:")
    assert not (data / "x.bin").exists()
