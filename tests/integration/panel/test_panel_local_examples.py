"""`panel local` loads the example blueprints, refreshes the ones it loaded when examples/ changes
(a newer checkout), and never overwrites a blueprint an admin edited."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from stellarstack.panel.db.engine import transaction
from stellarstack.panel.db.models import BlueprintRecord
from stellarstack.panel.local import EXAMPLE_DIGEST_ANNOTATION, load_example_blueprints
from support.panel import Panel

REPO = Path(__file__).resolve().parents[3]


def _toy_example(folder: Path, description: str) -> None:
    text = (REPO / "examples" / "toy.yaml").read_text()
    original = "A scripted stand-in for a game server"
    assert original in text
    (folder / "toy.yaml").write_text(text.replace(original, description))


def _toy(panel: Panel) -> dict[str, object]:
    with transaction(panel.context.sessions) as db:
        record = db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == "toy"))
        assert record is not None
        return dict(record.document)


def test_examples_are_added_then_refreshed_when_they_change(panel: Panel, tmp_path: Path) -> None:
    panel.client()  # starting the app migrates the database
    examples = tmp_path / "examples"
    examples.mkdir()
    _toy_example(examples, "First version.")
    assert load_example_blueprints(panel.context, examples) == (1, 0)
    first = _toy(panel)
    assert "First version." in str(first["spec"])
    assert EXAMPLE_DIGEST_ANNOTATION in first["metadata"]["annotations"]  # type: ignore[index]

    assert load_example_blueprints(panel.context, examples) == (0, 0)
    _toy_example(examples, "Second version.")
    assert load_example_blueprints(panel.context, examples) == (0, 1)
    assert "Second version." in str(_toy(panel)["spec"])


def test_a_blueprint_an_admin_edited_is_never_overwritten(panel: Panel, tmp_path: Path) -> None:
    panel.client()
    examples = tmp_path / "examples"
    examples.mkdir()
    _toy_example(examples, "First version.")
    load_example_blueprints(panel.context, examples)
    with transaction(panel.context.sessions) as db:
        record = db.scalar(select(BlueprintRecord).where(BlueprintRecord.name == "toy"))
        assert record is not None
        edited = dict(record.document)
        edited["spec"] = {**edited["spec"], "description": "Edited by the admin."}
        record.document = edited

    _toy_example(examples, "Second version.")
    assert load_example_blueprints(panel.context, examples) == (0, 0)
    assert _toy(panel)["spec"]["description"] == "Edited by the admin."  # type: ignore[index]
