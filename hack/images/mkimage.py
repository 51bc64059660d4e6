#!/usr/bin/env python3
"""Wrap a root filesystem tarball into a single-layer image archive, without any registry.

The output is the "docker save" archive layout (manifest.json + config + layer), which both
`docker load` and `ctr images import` accept and which carries the image name in RepoTags.
Standard library only, so it runs before any virtualenv exists.

Example:
    mkimage.py --layer rootfs.tar --tag localhost/stellarstack/toy:1 \
        --entrypoint '["/toy"]' --user 1000:1000 --workdir /data --out toy.tar
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

# A fixed timestamp keeps the image ID stable when the inputs are unchanged.
EPOCH = "1970-01-01T00:00:00Z"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def build(args: argparse.Namespace) -> None:
    layer = Path(args.layer)
    diff_id = sha256_file(layer)
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *args.env]
    container_config: dict[str, object] = {"Env": env}
    if args.entrypoint:
        container_config["Entrypoint"] = json.loads(args.entrypoint)
    if args.cmd:
        container_config["Cmd"] = json.loads(args.cmd)
    if args.user:
        container_config["User"] = args.user
    if args.workdir:
        container_config["WorkingDir"] = args.workdir
    if args.expose:
        container_config["ExposedPorts"] = {port: {} for port in args.expose}
    if args.stop_signal:
        container_config["StopSignal"] = args.stop_signal
    labels = dict(item.split("=", 1) for item in args.label)
    if labels:
        container_config["Labels"] = labels
    config = {
        "architecture": args.arch,
        "os": "linux",
        "created": EPOCH,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": EPOCH, "created_by": "hack/images/mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()
    manifest = [
        {
            "Config": f"{config_id}.json",
            "RepoTags": [args.tag],
            "Layers": [f"{diff_id}/layer.tar"],
        }
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename, so an interrupted build never leaves a half archive
    # that a later run would take for a finished one.
    with tempfile.NamedTemporaryFile(dir=out.parent, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        with tarfile.open(tmp_path, "w", format=tarfile.PAX_FORMAT) as archive:
            add_bytes(archive, f"{config_id}.json", config_bytes)
            info = archive.gettarinfo(str(layer), arcname=f"{diff_id}/layer.tar")
            info.mtime = 0
            with layer.open("rb") as handle:
                archive.addfile(info, handle)
            add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
            add_bytes(archive, "repositories", json.dumps(repositories(args.tag, diff_id)).encode())
        tmp_path.chmod(0o644)
        shutil.move(tmp_path, out)
    finally:
        tmp_path.unlink(missing_ok=True)


def repositories(tag: str, layer_id: str) -> dict[str, dict[str, str]]:
    """The legacy index older `docker load` versions read alongside manifest.json."""
    repo, _, version = tag.rpartition(":")
    return {repo: {version: layer_id}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", required=True, help="uncompressed rootfs tarball")
    parser.add_argument("--tag", required=True, help="image name, e.g. localhost/x/y:1")
    parser.add_argument("--out", required=True, help="archive to write")
    parser.add_argument("--entrypoint", help="JSON list")
    parser.add_argument("--cmd", help="JSON list")
    parser.add_argument("--user", help="numeric uid[:gid]")
    parser.add_argument("--workdir")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--expose", action="append", default=[], help="e.g. 7777/tcp")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("--stop-signal")
    parser.add_argument("--arch", default="amd64")
    build(parser.parse_args())


if __name__ == "__main__":
    main()
