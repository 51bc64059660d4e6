"""Blueprints: admins curate them (create, import eggs, edit, export); every user can list
them to create servers (seeing only user-viewable variables)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from stellarstack.api.eggs import EGG_FORMATS, EggError, dump_egg, export_egg
from stellarstack.panel.api.deps import (
    AdminReader,
    AdminWriter,
    ContextDep,
    Principal,
    SessionDep,
    require_scope,
)
from stellarstack.panel.api.errors import invalid, not_found
from stellarstack.panel.db.models import BlueprintRecord
from stellarstack.panel.services import infrastructure as infra

admin_router = APIRouter(prefix="/api/admin/blueprints", tags=["admin: blueprints"])
router = APIRouter(prefix="/api/blueprints", tags=["blueprints"])

ServersReader = Annotated[Principal, Depends(require_scope("servers:read"))]


class BlueprintPublic(BaseModel):
    """The stored Blueprint document (as `kubectl get -o json` would show its spec)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class EggImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    egg: str | dict[str, Any] = Field(
        description="The egg (PTDL_v1/v2, PLCN_v1-v3) as JSON/YAML text or as an object"
    )
    name: str | None = Field(
        default=None, max_length=63, description="Blueprint name; derived from the egg's name"
    )
    replace: bool = Field(default=False, description="Replace a blueprint of the same name")


def _record(db: SessionDep, name: str) -> BlueprintRecord:
    record = db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == name))
    if record is None:
        raise not_found("blueprint")
    return record


@admin_router.get("", summary="List blueprints with their documents")
def list_blueprints(_: AdminReader, db: SessionDep) -> list[BlueprintPublic]:
    rows = db.scalars(select(BlueprintRecord).order_by(BlueprintRecord.name)).all()
    return [BlueprintPublic.model_validate(row) for row in rows]


@admin_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a blueprint from its document (apiVersion, kind, metadata, spec)",
)
def create_blueprint(
    body: dict[str, Any], principal: AdminWriter, db: SessionDep, context: ContextDep
) -> BlueprintPublic:
    blueprint = infra.parse_blueprint(body)
    record = infra.store_blueprint(db, blueprint=blueprint, replace=False)
    context.activity.record(
        db,
        event="admin.blueprint.create",
        actor=principal.actor,
        target_type="blueprint",
        target_id=record.name,
    )
    return BlueprintPublic.model_validate(record)


@admin_router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    summary="Import a Pterodactyl/Pelican egg as a blueprint",
)
def import_blueprint(
    body: EggImport, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> BlueprintPublic:
    text = body.egg if isinstance(body.egg, str) else json.dumps(body.egg)
    blueprint = infra.blueprint_from_egg_text(text, name=body.name)
    record = infra.store_blueprint(db, blueprint=blueprint, replace=body.replace)
    context.activity.record(
        db,
        event="admin.blueprint.import",
        actor=principal.actor,
        target_type="blueprint",
        target_id=record.name,
    )
    return BlueprintPublic.model_validate(record)


@admin_router.get("/{name}", summary="Get a blueprint")
def get_blueprint(name: str, _: AdminReader, db: SessionDep) -> BlueprintPublic:
    return BlueprintPublic.model_validate(_record(db, name))


@admin_router.put("/{name}", summary="Replace a blueprint's document")
def replace_blueprint(
    name: str,
    body: dict[str, Any],
    principal: AdminWriter,
    db: SessionDep,
    context: ContextDep,
) -> BlueprintPublic:
    record = _record(db, name)
    blueprint = infra.parse_blueprint(body)
    if blueprint.metadata.name != name:
        raise invalid("body.metadata.name", f"must be {name!r} (rename by creating a new one)")
    before = record.document
    record = infra.store_blueprint(db, blueprint=blueprint, replace=True)
    context.activity.record(
        db,
        event="admin.blueprint.update",
        actor=principal.actor,
        target_type="blueprint",
        target_id=name,
        properties={"before": before, "after": record.document},
    )
    return BlueprintPublic.model_validate(record)


@admin_router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an unused blueprint"
)
def delete_blueprint(
    name: str, principal: AdminWriter, db: SessionDep, context: ContextDep
) -> None:
    record = _record(db, name)
    infra.ensure_unused(db, "blueprint", blueprint=name)
    context.activity.record(
        db,
        event="admin.blueprint.delete",
        actor=principal.actor,
        target_type="blueprint",
        target_id=name,
        properties={"before": record.document},
    )
    db.delete(record)


@admin_router.get(
    "/{name}/export",
    summary="Export a blueprint as an egg",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "application/yaml": {}}}},
)
def export_blueprint(
    name: str,
    _: AdminReader,
    db: SessionDep,
    format: str = Query(default="PLCN_v3", description=f"one of {', '.join(EGG_FORMATS)}"),
    as_: Literal["json", "yaml"] = Query(default="json", alias="as"),
) -> Response:
    if format not in EGG_FORMATS:
        raise invalid("query.format", f"must be one of {', '.join(EGG_FORMATS)}")
    blueprint = infra.load_blueprint(_record(db, name))
    try:
        text = dump_egg(export_egg(blueprint, format=format), as_)
    except EggError as exc:
        raise invalid("query.format", str(exc)) from exc
    media = "application/json" if as_ == "json" else "application/yaml"
    return Response(
        text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="egg-{name}.{as_}"'},
    )


class BlueprintVariableSummary(BaseModel):
    env: str
    name: str
    description: str
    default: str
    user_editable: bool
    rules: dict[str, Any]


class BlueprintSummary(BaseModel):
    """What a user choosing a blueprint sees (no install script, no hidden variables)."""

    name: str
    description: str
    images: list[dict[str, Any]]
    variables: list[BlueprintVariableSummary]


@router.get("", summary="Blueprints servers can be created from")
def list_for_users(_: ServersReader, db: SessionDep) -> list[BlueprintSummary]:
    summaries = []
    for record in db.scalars(select(BlueprintRecord).order_by(BlueprintRecord.name)).all():
        spec = infra.load_blueprint(record).spec
        summaries.append(
            BlueprintSummary(
                name=record.name,
                description=spec.description,
                images=[image.model_dump(mode="json", by_alias=True) for image in spec.images],
                variables=[
                    BlueprintVariableSummary(
                        env=variable.env,
                        name=variable.name,
                        description=variable.description,
                        default=variable.default,
                        user_editable=variable.user_editable,
                        rules=variable.rules.model_dump(
                            mode="json", by_alias=True, exclude_none=True
                        ),
                    )
                    for variable in spec.variables
                    if variable.user_viewable
                ],
            )
        )
    return summaries
