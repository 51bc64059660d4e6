"""Pterodactyl and Pelican eggs: import into Blueprints and export back. Pure: no I/O.

Formats: PTDL_v1, PTDL_v2 (Pterodactyl), PLCN_v1, PLCN_v2, PLCN_v3 (Pelican), as JSON or YAML.
What maps and what does not round-trip is written down in docs/eggs.md.
"""

from stellarstack.api.eggs.document import MAX_DEPTH, MAX_DOCUMENT_BYTES, load_document
from stellarstack.api.eggs.errors import EGG_FORMATS, EggError, EggFormat
from stellarstack.api.eggs.exporting import dump_egg, export_egg
from stellarstack.api.eggs.importing import blueprint_from_egg, blueprint_name, import_egg
from stellarstack.api.eggs.rules import format_rules, parse_rules

__all__ = [
    "EGG_FORMATS",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "EggError",
    "EggFormat",
    "blueprint_from_egg",
    "blueprint_name",
    "dump_egg",
    "export_egg",
    "format_rules",
    "import_egg",
    "load_document",
    "parse_rules",
]
