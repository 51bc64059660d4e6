#!/usr/bin/env python3
"""A tiny volume provisioner for the local test cluster (started by cluster.py).

For every PersistentVolumeClaim of the storage class it serves, once the scheduler has picked
the node (WaitForFirstConsumer), it makes a directory under --volumes and a hostPath
PersistentVolume bound to that claim. When a claim is deleted its volume turns Released: the
provisioner deletes the directory and the PersistentVolume (reclaim policy Delete).

It polls (every --interval seconds) instead of watching, which keeps it standard-library only
and robust across API server restarts. Single node, so node affinity is just that node.
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROVISIONER = "stellarstack.io/local-dir"


class Api:
    def __init__(self, kubeconfig: Path) -> None:
        config = json.loads(kubeconfig.read_text())
        self.server = config["clusters"][0]["cluster"]["server"]
        pki = kubeconfig.parent / "pki"
        self.context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            return json.loads(response.read())


def provision(api: Api, claim: dict[str, Any], volumes: Path, storage_class: str) -> None:
    meta, spec = claim["metadata"], claim["spec"]
    node = meta.get("annotations", {}).get("volume.kubernetes.io/selected-node")
    if not node:
        return  # the scheduler has not placed a consumer yet
    name = f"pvc-{meta['uid']}"
    path = volumes / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
    path.mkdir(parents=True, exist_ok=True)
    # Game images run as an unprivileged user; hostPath volumes ignore fsGroup.
    path.chmod(0o777)
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": str(path), "type": "Directory"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            },
        },
    }
    try:
        api.call("POST", "/api/v1/persistentvolumes", volume)
        print(f"provisioned {name} for {meta['namespace']}/{meta['name']} at {path}", flush=True)
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise


def reclaim(api: Api, volume: dict[str, Any], volumes: Path) -> None:
    meta, spec = volume["metadata"], volume["spec"]
    path = Path(spec.get("hostPath", {}).get("path", ""))
    # Only ever remove a directory this provisioner made.
    if path.parent == volumes and path.is_dir():
        shutil.rmtree(path)
    try:
        api.call("DELETE", f"/api/v1/persistentvolumes/{meta['name']}")
        print(f"deleted {meta['name']} and {path}", flush=True)
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise


def sync(api: Api, volumes: Path, storage_class: str) -> None:
    claims = api.call("GET", "/api/v1/persistentvolumeclaims")["items"]
    for claim in claims:
        if (
            claim["spec"].get("storageClassName") == storage_class
            and not claim["spec"].get("volumeName")
            and claim.get("status", {}).get("phase") == "Pending"
        ):
            provision(api, claim, volumes, storage_class)
    for volume in api.call("GET", "/api/v1/persistentvolumes")["items"]:
        provisioned_by = (
            volume["metadata"].get("annotations", {}).get("pv.kubernetes.io/provisioned-by")
        )
        if provisioned_by == PROVISIONER and volume.get("status", {}).get("phase") in (
            "Released",
            "Failed",
        ):
            reclaim(api, volume, volumes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig-dir", type=Path, required=True)
    parser.add_argument("--volumes", type=Path, required=True)
    parser.add_argument("--storage-class", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    args.volumes.mkdir(parents=True, exist_ok=True)
    api = Api(args.kubeconfig_dir / "kubeconfig")
    while True:
        try:
            sync(api, args.volumes.resolve(), args.storage_class)
        except (OSError, ValueError, KeyError) as error:
            # The API server may be restarting; try again on the next round.
            print(f"sync failed: {error}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
