"""Errors for people: which file, which field, which rule — for config and ticket files alike."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


# Errors that mean "the input is wrong" (exit code 2), by type name: they also arrive as names, from ZenML's
# record of a failed step or a sweep item's error record.
INPUT_ERROR_TYPES = ("InputFileError", "ImageValidationError")


class InputFileError(ValueError):
    """A config or ticket file is wrong. `problems` holds one (field, rule) line each."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]):
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(f"{self.path}: {field}: {rule}" if field else f"{self.path}: {rule}"
                                   for field, rule in problems))


def field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def from_validation_error(path: Path | str, err: ValidationError) -> InputFileError:
    problems = []
    for e in err.errors():
        rule = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            rule = "unknown key (not part of the schema; check the spelling)"
        elif e["type"] == "missing":
            rule = "required key is missing"
        problems.append((field_path(tuple(e["loc"])), rule))
    return InputFileError(path, problems)


def read_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON file whose top level must be a mapping."""
    if not path.is_file():
        raise InputFileError(path, [("", "file not found")])
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise InputFileError(path, [("", f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {err}")]) from err
    if not isinstance(data, dict):
        raise InputFileError(path, [("", "top level must be a mapping of keys to values")])
    return data


def load_validated(path: Path, schema: type[BaseModel]) -> BaseModel:
    """Read a YAML/JSON file and validate it against `schema`; errors name the file, field and rule."""
    data = read_mapping(path)
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise from_validation_error(path, err) from None


def write_json_schema(schema: type[BaseModel], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(schema.model_json_schema(), indent=2) + "\n")
    return out
