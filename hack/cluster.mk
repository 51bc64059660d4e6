# Local Kubernetes test cluster and test images (docs/cluster.md). Included by the Makefile.
# The scripts use only the system python3 and Debian packages, so they run before `make install`.

.PHONY: cluster cluster-down cluster-status images k8s-binaries

# Build (once, cached under ~/.cache/stellarstack) and start a single-node cluster; a no-op
# when it is already up. Prints how to point kubectl at it.
cluster:
	python3 hack/cluster/cluster.py up

# Stop every process `make cluster` started (by PID file) and remove the cluster's state.
cluster-down:
	python3 hack/cluster/cluster.py down

cluster-status:
	python3 hack/cluster/cluster.py status

# Test images from Debian packages (no registry), loaded into the cluster and Docker if up.
images:
	bash hack/images/build.sh

# Only compile the Kubernetes binaries (part of `make cluster`).
k8s-binaries:
	bash hack/cluster/build-k8s.sh
