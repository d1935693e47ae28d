"""Errors for people: which file, which field, which rule — for config and ticket files alike."""
from __future__ import annotations

import json
import os
import stat
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
        # One line per problem, whatever a parser put into its message.
        self.problems = [(field, " ".join(rule.splitlines())) for field, rule in problems]
        super().__init__("\n".join(f"{self.path}: {field}: {rule}" if field else f"{self.path}: {rule}"
                                   for field, rule in self.problems))


def field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if not isinstance(part, (int, str)) or (isinstance(part, str) and not part.isprintable()):
            part = repr(part)  # a key from the file is shown, never interpreted by the terminal
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
        elif e["type"] == "string_unicode":  # pydantic's words for it name no cause
            rule = "not valid Unicode text (it holds an unpaired surrogate, such as a lone \\ud800 escape)"
        problems.append((field_path(tuple(e["loc"])), rule))
    return InputFileError(path, problems)


MAX_TEXT_FILE_BYTES = 1024 * 1024  # a ticket or config is a page of text; more is a mistake, or an attack


class UnreadableFile(ValueError):
    """A path that is not a regular file one may read (missing, a directory, a FIFO, a device, ...)."""


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is not a regular file (FIFO, a named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is not a regular file (a device)"
    if stat.S_ISSOCK(mode):
        return "is not a regular file (a socket)"
    return "is not a regular file"


def file_problem(path: Path | str) -> str | None:
    """Why `path` is not a readable regular file, or None. Looks with stat only: opening a FIFO would block."""
    try:
        return _kind(os.stat(path).st_mode)
    except FileNotFoundError:
        return "does not exist"
    except NotADirectoryError:
        return "does not exist (a folder on its path is a file)"
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    except ValueError:  # os.stat refuses a path with a NUL byte
        return "is not a valid path (it contains a NUL byte)"


def read_regular_file(path: Path | str, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; raises UnreadableFile saying why not."""
    problem = file_problem(path)
    if problem:
        raise UnreadableFile(problem)
    try:
        # Non-blocking, and checked again on the open file: it may have been swapped for a FIFO since.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise UnreadableFile(f"cannot be read ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        problem = _kind(info.st_mode)
        if problem:
            raise UnreadableFile(problem)
        data = file.read() if max_bytes is None else file.read(max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise UnreadableFile(f"is more than {max_bytes} bytes")
    return data


class DuplicateKey(ValueError):
    def __init__(self, key, first_line: int | None = None, line: int | None = None):
        self.key, self.first_line, self.line = key, first_line, line
        super().__init__(f"key {key!r} is given twice")


class _StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last value, silently)."""


def _mapping_without_repeats(loader: _StrictYamlLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping = loader.construct_mapping(node, deep=deep)  # also refuses unhashable keys
    first_line: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in first_line:
            raise DuplicateKey(key, first_line[key], key_node.start_mark.line + 1)
        first_line[key] = key_node.start_mark.line + 1
    return mapping


_StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)


def _json_object_without_repeats(pairs: list[tuple[str, Any]]) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _parse(path: Path, text: str) -> Any:
    """YAML or JSON by suffix; raises InputFileError with one line per problem."""
    is_json = path.suffix.lower() == ".json"
    language = "JSON" if is_json else "YAML"
    try:
        if is_json:
            return json.loads(text, object_pairs_hook=_json_object_without_repeats)
        return yaml.load(text, Loader=_StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as err:
        where = f" (lines {err.first_line} and {err.line})" if err.first_line else ""
        raise InputFileError(path, [(field_path((err.key,)), f"given twice in the same mapping{where}; keep one: "
                                                            "otherwise the last value would silently win")]) from None
    except json.JSONDecodeError as err:
        rule = f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        rule = f"not valid YAML: {err.context + ', ' if err.context else ''}{err.problem}{at}"
    except RecursionError:
        rule = f"not valid {language}: nested too deeply"
    except Exception as err:  # noqa: BLE001 - any parser failure on outside text is the file's fault, not a crash
        rule = f"not valid {language}: {err}"
    raise InputFileError(path, [("", rule)])


def read_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON file whose top level must be a mapping: a regular file of UTF-8 text, no key twice."""
    try:
        data = read_regular_file(path, MAX_TEXT_FILE_BYTES)
    except UnreadableFile as err:
        rule = "file not found" if str(err) == "does not exist" else str(err)
        if rule.startswith("is more than"):
            rule += "; a ticket or config is a short text file"
        raise InputFileError(path, [("", rule)]) from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
    except UnicodeDecodeError as err:
        raise InputFileError(path, [("", f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                                         "save the file as UTF-8")]) from None
    parsed = _parse(path, text)
    if not isinstance(parsed, dict):
        raise InputFileError(path, [("", "top level must be a mapping of keys to values")])
    return parsed


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
