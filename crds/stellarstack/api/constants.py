"""Names every component agrees on: the API group, versions, label keys."""

from typing import Final

GROUP: Final = "stellarstack.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "stellarstack"

# Labels that every child object (Pod, PVC, Service, Job, Docker container) carries, so that
# runtimes can find and re-adopt what they made after a restart.
LABEL_GAMESERVER: Final = f"{GROUP}/gameserver"
LABEL_BLUEPRINT: Final = f"{GROUP}/blueprint"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
MANAGED_BY: Final = "stellarstack"

FINALIZER: Final = f"{GROUP}/finalizer"
