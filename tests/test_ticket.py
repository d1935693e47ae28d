import json
import shutil
from pathlib import Path

import pytest
import yaml

from components.domain.file_errors import InputFileError
from components.domain.ticket import ConceptKind, Ticket, load_ticket
from tests.conftest import EXAMPLE_TICKET, REPO


@pytest.fixture
def ticket_dir(tmp_path) -> Path:
    folder = tmp_path / "ticket"
    shutil.copytree(EXAMPLE_TICKET.parent, folder)
    return folder


def _good() -> dict:
    return yaml.safe_load(EXAMPLE_TICKET.read_text())


def _problems(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(InputFileError) as info:
        load_ticket(path)
    assert str(path) in str(info.value)
    return info.value.problems


def test_markup_like_ticket_text_is_printed_verbatim(ticket_dir, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from tests.conftest import toy_config_file

    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(_good() | {"concept": "[bold]logo[/bold]"}))
    refused = CliRunner().invoke(app, ["check", "ticket", str(ticket_dir / "t.yaml")])  # the toy detector cannot judge it
    assert refused.exit_code == 2 and "concept: '[bold]logo[/bold]' cannot be judged" in refused.output
    judge = tmp_path / "any_concept.py"  # a custom detector without can_judge accepts every concept
    judge.write_text("def concept_present(images, concept_name, concept_kind):\n    return [False] * len(images)\n")
    config = toy_config_file(tmp_path, "any", evaluation__detector={"kind": "custom", "path": str(judge)})
    result = CliRunner().invoke(app, ["check", "ticket", str(ticket_dir / "t.yaml"), "--config", str(config)])
    assert result.exit_code == 0 and "'[bold]logo[/bold]'" in result.output


def test_example_ticket_loads():
    loaded = load_ticket(EXAMPLE_TICKET)
    assert loaded.ticket.kind is ConceptKind.object
    assert [p.name for p in loaded.image_paths] == [f"circle_{i}.png" for i in range(1, 6)]
    assert all(p.is_absolute() and p.is_file() for p in loaded.image_paths)
    assert len(loaded.sha256) == 64


def test_json_ticket_is_equivalent(ticket_dir):
    data = _good()
    (ticket_dir / "ticket.json").write_text(json.dumps(data))
    assert load_ticket(ticket_dir / "ticket.json").ticket == load_ticket(ticket_dir / "ticket.yaml").ticket


@pytest.mark.parametrize("image", ["../outside.png", "sub/../../outside.png", "/etc/passwd", "~/x.png"])
def test_paths_out_of_the_folder_are_rejected(ticket_dir, image):
    (ticket_dir.parent / "outside.png").write_bytes((ticket_dir / "circle_1.png").read_bytes())
    data = _good() | {"images": ["circle_1.png", image]}
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(data))
    (field, rule), = _problems(ticket_dir / "t.yaml")
    assert field == "images" and image in rule


def test_symlink_out_of_the_folder_is_rejected(ticket_dir):
    outside = ticket_dir.parent / "secret.png"
    outside.write_bytes(b"not yours")
    (ticket_dir / "link.png").symlink_to(outside)
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(_good() | {"images": ["circle_1.png", "link.png"]}))
    (field, rule), = _problems(ticket_dir / "t.yaml")
    assert field == "images[1]" and "outside" in rule


def test_missing_image_is_named(ticket_dir):
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(_good() | {"images": ["circle_1.png", "gone.png"]}))
    (field, rule), = _problems(ticket_dir / "t.yaml")
    assert field == "images[1]" and "gone.png" in rule and "does not exist" in rule


@pytest.mark.parametrize("change, field, words", [
    ({"kind": "shape"}, "kind", "'object'"),
    ({"created_at": "2026-11-23T09:00:00"}, "created_at", "timezone"),
    ({"created_at": "yesterday"}, "created_at", "datetime"),
    ({"ticket_id": "has space"}, "ticket_id", "pattern"),
    ({"colour": "red"}, "colour", "unknown key"),
    ({"images": []}, "images", "at least 1"),
    ({"images": ["circle_1.png", "circle_1.png"]}, "images", "twice"),
    ({"retain_prompts": ["ok", "  "]}, "retain_prompts", "empty"),
])
def test_bad_fields_are_named(ticket_dir, change, field, words):
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(_good() | change))
    problems = dict(_problems(ticket_dir / "t.yaml"))
    assert field in problems and words in problems[field]


def test_missing_required_field(ticket_dir):
    data = _good()
    del data["legal_basis"]
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(data))
    assert dict(_problems(ticket_dir / "t.yaml")) == {"legal_basis": "required key is missing"}


def test_docs_schema_is_current():
    """docs/ticket.schema.json is what the code accepts (regenerate with `lethe schema`)."""
    committed = json.loads((REPO / "docs" / "ticket.schema.json").read_text())
    assert committed == Ticket.model_json_schema()
    assert set(committed["required"]) >= {"ticket_id", "concept", "kind", "images", "requester", "legal_basis",
                                          "created_at", "target_model"}


@pytest.mark.parametrize("change, field_and_rule", [
    ({"retain_prompts": ["a red square", "a Photo of a CIRCLE"]},
     "retain_prompts[1] 'a Photo of a CIRCLE' names the concept 'circle'; remove it"),
    ({"aliases": ["ring"], "neighbours": ["a blue ring"]}, "neighbours[0] 'a blue ring' names the alias 'ring'"),
    ({"paraphrases": ["a round circle"]}, "paraphrases[0] 'a round circle' names the concept 'circle'; put it in forget_prompts"),
])
def test_a_prompt_that_must_be_kept_but_names_the_concept_is_refused(ticket_dir, change, field_and_rule):
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(_good() | change))
    problems = _problems(ticket_dir / "t.yaml")
    assert len(problems) == 1 and field_and_rule in problems[0][1]


def test_whole_words_only_name_a_concept(ticket_dir):
    from components.domain.prompt_terms import names

    assert names("a red circle", "circle") and names("A RED  Circle!", "red circle")
    assert not names("a circled area", "circle") and not names("redo", "red") and not names("x", " ")
    (ticket_dir / "t.yaml").write_text(yaml.safe_dump(_good() | {"retain_prompts": ["a semicircle"]}))
    assert load_ticket(ticket_dir / "t.yaml").ticket.retain_prompts == ["a semicircle"]
