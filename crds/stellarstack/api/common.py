"""Building blocks shared by the four kinds: the model base, metadata, names, conditions."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The characters an IPv4 or IPv6 address is written with; `_check_ip_address` is the real check.
IP_ADDRESS_CHARACTERS = re.compile(r"^[0-9A-Fa-f:.]+$")


class ApiModel(BaseModel):
    """Base of every model: camelCase on the wire, snake_case in Python, unknown fields refused.

    Refusing unknown fields is what makes a typo (`memroy:`) an error instead of a silent default.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_assignment=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready document as Kubernetes stores it (camelCase keys, no unset nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_dns_label(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"must be at most 63 characters (got {len(value)})")
    if not DNS1123_LABEL.match(value):
        raise ValueError(
            "must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _check_dns_subdomain(value: str) -> str:
    if len(value) > 253:
        raise ValueError(f"must be at most 253 characters (got {len(value)})")
    if not DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _check_env_name(value: str) -> str:
    if not ENV_NAME.match(value) or len(value) > 128:
        raise ValueError(
            "must be an environment variable name: letters, digits and '_', not starting with "
            "a digit, at most 128 characters"
        )
    return value


def _check_ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


@dataclass(frozen=True)
class SchemaHint:
    """Publishes a function-checked string shape in the JSON Schema (and so in the CRDs).

    Validation stays with the function and its clear message; the hint only lets the API server
    refuse a bad value at `kubectl apply`. A tighter `max_length` on the field wins.
    """

    pattern: str
    max_length: int

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        schema["maxLength"] = min(schema.get("maxLength", self.max_length), self.max_length)
        return schema


DnsLabel = Annotated[str, AfterValidator(_check_dns_label), SchemaHint(DNS1123_LABEL.pattern, 63)]
DnsSubdomain = Annotated[
    str, AfterValidator(_check_dns_subdomain), SchemaHint(DNS1123_SUBDOMAIN.pattern, 253)
]
EnvName = Annotated[str, AfterValidator(_check_env_name), SchemaHint(ENV_NAME.pattern, 128)]
IpAddress = Annotated[
    str, AfterValidator(_check_ip_address), SchemaHint(IP_ADDRESS_CHARACTERS.pattern, 45)
]
"""An IPv4 or IPv6 address, stored in its canonical spelling."""


class OwnerReference(ApiModel):
    """A reference to the object that owns this one (garbage collection)."""

    model_config = ConfigDict(extra="allow")

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(ApiModel):
    """The standard Kubernetes object metadata; fields the server sets are accepted as they are."""

    # The API server adds fields (managedFields, selfLink, ...) that we neither use nor own.
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    """Object name, unique per kind (and per namespace for namespaced kinds)."""
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One observation about the object, in the shape of `metav1.Condition`."""

    type: str = Field(max_length=316)
    """CamelCase condition type, e.g. `Ready`, `Installed`, `BlueprintReady`."""
    status: ConditionStatus
    """`True`, `False` or `Unknown`."""
    reason: str = Field(default="", max_length=1024)
    """One CamelCase word a program can match on."""
    message: str = Field(default="", max_length=32768)
    """A sentence for humans."""
    last_transition_time: datetime | None = None
    """When `status` last changed."""
    observed_generation: int | None = None
    """The `.metadata.generation` this condition was computed from."""


class Resource(ApiModel):
    """Common top level of every kind: apiVersion, kind, metadata; spec and status per kind."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    NAMESPACED: ClassVar[bool] = True
    # Longest metadata.name the kind accepts; child objects append suffixes to it.
    MAX_NAME_LENGTH: ClassVar[int] = 63
    # Kinds whose name becomes a Service name must start with a letter (DNS-1035).
    NAME_PATTERN: ClassVar[re.Pattern[str]] = DNS1123_LABEL

    api_version: Literal["stellarstack.io/v1alpha1"] = "stellarstack.io/v1alpha1"
    """Always `stellarstack.io/v1alpha1`."""
    kind: str
    """The kind of the resource."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""

    @model_validator(mode="after")
    def _check_name(self) -> Resource:
        name = self.metadata.name
        if name is None:
            if self.metadata.generate_name is None:
                raise ValueError("metadata.name: a name is required")
            return self
        if len(name) > self.MAX_NAME_LENGTH:
            raise ValueError(
                f"metadata.name: at most {self.MAX_NAME_LENGTH} characters for a {self.KIND} "
                f"(got {len(name)}); child objects append suffixes to it"
            )
        if not self.NAME_PATTERN.match(name):
            first = "a letter" if self.NAME_PATTERN is DNS1035_LABEL else "a letter or digit"
            raise ValueError(
                "metadata.name: must be lowercase letters, digits and '-', "
                f"starting with {first} and ending with a letter or digit"
            )
        return self
