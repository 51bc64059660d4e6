"""Files, backups and schedules through the panel to a real node (nodeproxy + dockerd + the toy
game): upload/list/download round trips, a planted symlink refused through the panel, backup
archive hashes, the backup limit under parallel creates, schedules with field errors.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.panel import Panel, PanelClient, create_user
from support.panel_node import (
    NodeProcess,
    add_subuser,
    register_server,
    remove_containers,
    run_toy,
    served,
    set_server,
    start_node,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, toy_image: str
) -> Iterator[NodeProcess]:
    process = start_node(tmp_path_factory.mktemp("files-node"))
    try:
        yield process
    finally:
        process.stop()
        remove_containers(docker_client, process)


@pytest.fixture(scope="module")
def toy(node: NodeProcess) -> str:
    """One running toy server shared by the file tests."""
    name = f"files-{uuid.uuid4().hex[:6]}"
    run_toy(node, name)
    return name


def owned(panel: Panel, node: NodeProcess, name: str, **fields: Any) -> tuple[PanelClient, str]:
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    server_id = register_server(panel, node, owner_id=owner_id, resource_name=name, **fields)
    return panel.login("owner@example.com"), server_id


def test_upload_list_download_round_trip_streams_and_ranges(
    panel: Panel, node: NodeProcess, toy: str
) -> None:
    owner, server_id = owned(panel, node, toy)
    files = f"/api/servers/{server_id}/files"
    payload = os.urandom(3 * 1024 * 1024 + 17)
    folder = f"worlds-{uuid.uuid4().hex[:6]}"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 256 * 1024):
            yield payload[start : start + 256 * 1024]

    uploaded = owner.put(f"{files}/content", params={"path": f"{folder}/a.bin"}, content=chunks())
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == len(payload)
    listing = owner.get(f"{files}/list", params={"path": folder})
    assert listing.status_code == 200, listing.text
    assert [(e["name"], e["size"]) for e in listing.json()] == [("a.bin", len(payload))]
    download = owner.get(f"{files}/content", params={"path": f"{folder}/a.bin"})
    assert download.status_code == 200
    assert hashlib.sha256(download.content).digest() == hashlib.sha256(payload).digest()
    part = owner.get(
        f"{files}/content", params={"path": f"{folder}/a.bin"}, headers={"Range": "bytes=10-19"}
    )
    assert (part.status_code, part.content) == (206, payload[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{len(payload)}"

    again = owner.put(f"{files}/content", params={"path": f"{folder}/a.bin"}, content=b"x")
    assert again.status_code == 409, again.text
    assert again.json()["error"]["field"] == "path"
    replaced = owner.put(
        f"{files}/content", params={"path": f"{folder}/a.bin", "overwrite": "true"}, content=b"x"
    )
    assert replaced.status_code == 201
    renamed = owner.post(
        f"{files}/rename",
        json={"source": f"{folder}/a.bin", "destination": f"{folder}/b.bin"},
    )
    assert renamed.status_code == 200, renamed.text
    invalid = owner.post(f"{files}/rename", json={"source": f"{folder}/b.bin"})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["field"] == "body.destination"
    assert owner.post(f"{files}/delete", json={"paths": [folder]}).status_code == 204
    gone = owner.get(f"{files}/stat", params={"path": folder})
    assert gone.status_code == 404
    assert gone.json()["error"]["field"] == "path"
    events = [
        row["event"] for row in owner.get(f"/api/servers/{server_id}/activity").json()["items"]
    ]
    assert {"server.file.upload", "server.file.rename", "server.file.delete"} <= set(events)


def test_planted_symlinks_are_refused_through_the_panel(
    panel: Panel, node: NodeProcess, toy: str
) -> None:
    owner, server_id = owned(panel, node, toy)
    files = f"/api/servers/{server_id}/files"
    root = node.server_dir(toy)
    tag = uuid.uuid4().hex[:6]
    os.symlink("/etc", root / f"etc-{tag}")
    os.symlink("/etc/passwd", root / f"passwd-{tag}")
    try:
        for path in (f"etc-{tag}/passwd", f"passwd-{tag}"):
            read = owner.get(f"{files}/content", params={"path": path})
            assert 400 <= read.status_code < 500, read.text
            assert "root:" not in read.text
            assert read.json()["error"]["field"] == "path"
        write = owner.put(f"{files}/content", params={"path": f"etc-{tag}/evil"}, content=b"x")
        assert 400 <= write.status_code < 500, write.text
        assert not os.path.exists("/etc/evil")
        listed = owner.get(f"{files}/list", params={"path": f"etc-{tag}"})
        assert 400 <= listed.status_code < 500
        # The link itself is listed as a link, never followed.
        entry = next(e for e in owner.get(f"{files}/list").json() if e["name"] == f"passwd-{tag}")
        assert entry["type"] == "symlink"
    finally:
        os.unlink(root / f"etc-{tag}")
        os.unlink(root / f"passwd-{tag}")


def test_the_root_and_leading_slashes_through_the_panel(
    panel: Panel, node: NodeProcess, toy: str
) -> None:
    owner, server_id = owned(panel, node, toy)
    files = f"/api/servers/{server_id}/files"
    folder = f"plugins-{uuid.uuid4().hex[:6]}"
    uploaded = owner.put(f"{files}/content", params={"path": f"/{folder}/x.jar"}, content=b"jar")
    assert uploaded.status_code == 201, uploaded.text
    assert (node.server_dir(toy) / folder / "x.jar").read_bytes() == b"jar"
    for spelling in ("/", "", "."):
        listing = owner.get(f"{files}/list", params={"path": spelling})
        assert listing.status_code == 200, (spelling, listing.text)
        assert folder in {entry["name"] for entry in listing.json()}, spelling
    assert owner.get(f"{files}/list").json() == owner.get(f"{files}/list?path=/").json()
    read = owner.get(f"{files}/content", params={"path": f"/{folder}/x.jar"})
    assert (read.status_code, read.content) == (200, b"jar")
    made = owner.post(f"{files}/mkdir", json={"path": f"/{folder}/sub"})
    assert made.status_code == 201, made.text
    climbing = owner.get(f"{files}/content", params={"path": "/../etc/passwd"})
    assert climbing.status_code == 400, climbing.text
    assert climbing.json()["error"]["code"] == "bad_path"
    assert climbing.json()["error"]["field"] == "path"
    host = owner.get(f"{files}/content", params={"path": "//etc/passwd"})
    assert host.status_code == 404, host.text
    assert "root:" not in host.text
    removed = owner.post(f"{files}/delete", json={"paths": [f"/{folder}"]})
    assert removed.status_code == 204, removed.text
    assert not (node.server_dir(toy) / folder).exists()


def test_file_permissions_and_scopes(panel: Panel, node: NodeProcess, toy: str) -> None:
    admin = panel.setup_admin()
    owner_id = create_user(panel, admin, "owner@example.com")
    reader_id = create_user(panel, admin, "reader@example.com")
    server_id = register_server(panel, node, owner_id=owner_id, resource_name=toy)
    add_subuser(panel, server_id, reader_id, ["files.read"])
    reader = panel.login("reader@example.com")
    files = f"/api/servers/{server_id}/files"
    assert reader.get(f"{files}/list").status_code == 200
    for response in (
        reader.get(f"{files}/content", params={"path": "boots"}),
        reader.put(f"{files}/content", params={"path": "x.txt"}, content=b"x"),
        reader.post(f"{files}/mkdir", json={"path": "d"}),
        reader.post(f"{files}/delete", json={"paths": ["boots"]}),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    owner = panel.login("owner@example.com")
    read_only_key = panel.client(api_key=owner.create_api_key(["files:read"]))
    assert read_only_key.get(f"{files}/content", params={"path": "boots"}).status_code == 200
    refused = read_only_key.post(f"{files}/mkdir", json={"path": "d"})
    assert refused.status_code == 403
    assert "files:write" in refused.json()["error"]["message"]
    stranger = create_user(panel, admin, "stranger@example.com")
    assert stranger
    outsider = panel.login("stranger@example.com")
    assert outsider.get(f"{files}/list").status_code == 404


def wait_backup(client: PanelClient, url: str, within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body.get("phase") in {"Completed", "Failed"}:
            return body
        time.sleep(0.5)
    raise AssertionError(f"the backup did not finish: {body}")


def test_backup_create_complete_download_lock_delete(panel: Panel, node: NodeProcess) -> None:
    name = f"bak-{uuid.uuid4().hex[:6]}"
    run_toy(node, name)
    owner, server_id = owned(panel, node, name)
    backups = f"/api/servers/{server_id}/backups"
    content = f"/api/servers/{server_id}/files/content"
    assert owner.put(content, params={"path": "keep.txt"}, content=b"v1").status_code == 201
    created = owner.post(backups, json={"ignore": ["*.log"]})
    assert created.status_code == 201, created.text
    backup = created.json()["name"]
    done = wait_backup(owner, f"{backups}/{backup}")
    assert done["phase"] == "Completed", done
    archive = owner.get(f"{backups}/{backup}/download")
    assert archive.status_code == 200
    assert hashlib.sha256(archive.content).hexdigest() == done["sha256"]
    assert archive.headers["x-checksum-sha256"] == done["sha256"]
    assert [b["name"] for b in owner.get(backups).json()] == [backup]

    changed = owner.put(content, params={"path": "keep.txt", "overwrite": "true"}, content=b"v2")
    assert changed.status_code == 201
    restore = owner.post(f"{backups}/{backup}/restore", json={})
    assert restore.status_code == 202, restore.text
    deadline = time.monotonic() + 120
    restored: dict[str, Any] = {}
    while not (restored.get("last_restore") or {}).get("result"):
        assert time.monotonic() < deadline, restored
        time.sleep(0.5)
        restored = owner.get(f"{backups}/{backup}").json()
    assert restored["last_restore"]["result"] == "Succeeded", restored
    assert owner.get(content, params={"path": "keep.txt"}).content == b"v1"

    assert owner.post(f"{backups}/{backup}/lock", json={"locked": True}).json()["locked"]
    refused = owner.delete(f"{backups}/{backup}")
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "locked"
    assert owner.post(f"{backups}/{backup}/lock", json={"locked": False}).status_code == 200
    assert owner.delete(f"{backups}/{backup}").status_code == 202
    assert owner.get(f"{backups}/nope/download").status_code == 404
    events = [r["event"] for r in owner.get(f"/api/servers/{server_id}/activity").json()["items"]]
    for event in ("create", "download", "restore", "lock", "unlock", "delete"):
        assert f"server.backup.{event}" in events


def test_backup_limit_holds_under_parallel_creates(panel: Panel, node: NodeProcess) -> None:
    name = f"lim-{uuid.uuid4().hex[:6]}"
    run_toy(node, name)
    owner, server_id = owned(panel, node, name, backup_limit=2)
    key = owner.create_api_key(["backups:read", "backups:create"])
    with served(panel) as base:

        def create(_: int) -> httpx.Response:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as client:
                return client.post(f"/api/servers/{server_id}/backups", json={})

        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(create, range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 201, 409, 409, 409, 409], [a.text for a in answers]
    refusal = next(a for a in answers if a.status_code == 409).json()["error"]
    assert refusal["field"] == "backup_limit"
    assert len(owner.get(f"/api/servers/{server_id}/backups").json()) == 2


def test_backups_of_another_server_on_the_node_are_not_reachable(
    panel: Panel, node: NodeProcess, toy: str
) -> None:
    owner, server_id = owned(panel, node, toy)
    with node.client() as client:
        name = f"f-{uuid.uuid4().hex[:6]}"
        foreign = {
            "kind": "Backup",
            "metadata": {"name": name},
            "spec": {"gameServer": "someone-else"},
        }
        assert client.put(f"/api/v1/namespaces/default/backups/{name}", json=foreign).is_success
    backups = f"/api/servers/{server_id}/backups"
    assert name not in [b["name"] for b in owner.get(backups).json()]
    assert owner.get(f"{backups}/{name}").status_code == 404
    assert owner.get(f"{backups}/{name}/download").status_code == 404
    assert owner.delete(f"{backups}/{name}").status_code == 404


def test_schedules_crud_limit_and_field_errors(panel: Panel, node: NodeProcess, toy: str) -> None:
    owner, server_id = owned(panel, node, toy, schedule_limit=1)
    schedules = f"/api/servers/{server_id}/schedules"
    body = {
        "name": f"nightly-{uuid.uuid4().hex[:6]}",
        "cron": "0 4 * * *",
        "timeZone": "Europe/Berlin",
        "tasks": [{"action": "Command", "command": "say restarting"}],
    }
    bad_cron = owner.post(schedules, json={**body, "cron": "every day"})
    assert bad_cron.status_code == 422
    assert bad_cron.json()["error"]["field"] == "body.cron"
    bad_task = owner.post(schedules, json={**body, "tasks": [{"action": "Command"}]})
    assert bad_task.status_code == 422
    assert bad_task.json()["error"]["field"].startswith("body.tasks.0")
    foreign = owner.post(schedules, json={**body, "gameServer": "other"})
    assert foreign.json()["error"]["field"] == "body.gameServer"

    created = owner.post(schedules, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["cron"] == "0 4 * * *"
    over = owner.post(schedules, json={**body, "name": "second"})
    assert over.status_code == 409
    assert over.json()["error"]["field"] == "schedule_limit"
    url = f"{schedules}/{body['name']}"
    changed = owner.put(url, json={**body, "enabled": False})
    assert changed.status_code == 200
    assert changed.json()["spec"]["enabled"] is False
    assert [s["name"] for s in owner.get(schedules).json()] == [body["name"]]
    assert owner.delete(url).status_code == 204
    assert owner.get(url).status_code == 404
    set_server(panel, server_id, suspended=True)
    assert owner.get(schedules).status_code == 409
