"""Every table of the panel; importing this package registers them all on `Base.metadata`."""

from stellarstack.panel.db.models.accounts import (
    ApiKey,
    EmailToken,
    LoginAttempt,
    LoginSession,
    RecoveryCode,
    Role,
    User,
)
from stellarstack.panel.db.models.activity import ActivityLog, IdempotencyRecord
from stellarstack.panel.db.models.coordination import Lease
from stellarstack.panel.db.models.infrastructure import (
    Allocation,
    BlueprintRecord,
    KubernetesTarget,
    Location,
    Node,
)
from stellarstack.panel.db.models.servers import Invitation, Server, Subuser, TargetKind
from stellarstack.panel.db.models.webhooks import Webhook, WebhookDelivery, WebhookFormat

__all__ = [
    "ActivityLog",
    "Allocation",
    "ApiKey",
    "BlueprintRecord",
    "EmailToken",
    "IdempotencyRecord",
    "Invitation",
    "KubernetesTarget",
    "Lease",
    "Location",
    "LoginAttempt",
    "LoginSession",
    "Node",
    "RecoveryCode",
    "Role",
    "Server",
    "Subuser",
    "TargetKind",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WebhookFormat",
]
