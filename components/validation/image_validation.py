"""Validate a ticket's image set with Great Expectations 1.x (used directly, in an ephemeral context).

The table of per-image facts (components/validation/image_facts.py) is checked by one expectation suite built
from the run config's `validation` block. Every failed expectation becomes one line per offending
file, naming the file and the rule, and the whole GX result is kept as the run's artefact.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .image_facts import ImageFacts, image_facts

SUITE_NAME = "lethe_ticket_images"


class ImageValidationError(ValueError):
    """The image set broke rules: `problems` holds (file, rule) pairs; `report` the full result."""

    def __init__(self, report: "ValidationReport"):
        self.report = report
        super().__init__("\n".join(rule if file == report.ticket else f"{report.ticket}: image {file}: {rule}"
                                   for file, rule in report.problems))


@dataclass
class ValidationReport:
    success: bool
    problems: list[tuple[str, str]]  # (file, rule), in the order the rules are listed below
    facts: list[ImageFacts]
    gx_result: dict  # Great Expectations' own JSON result
    ticket: str  # the ticket file; image names in `problems` are as it lists them (relative to its folder)

    def as_dict(self) -> dict:
        return {"success": self.success, "ticket": self.ticket, "problems": [{"file": f, "rule": r} for f, r in self.problems],
                "facts": [asdict(f) for f in self.facts], "great_expectations": self.gx_result}

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True, default=str) + "\n")
        return path


def facts_table(facts: list[ImageFacts]) -> pd.DataFrame:
    table = pd.DataFrame([asdict(f) for f in facts], columns=list(ImageFacts.__dataclass_fields__))
    sides = table[["width", "height"]].astype("float")
    table["min_side"] = sides.min(axis=1)
    table["pixels"] = sides["width"] * sides["height"]
    table["aspect_ratio"] = sides.max(axis=1) / sides.min(axis=1).where(sides.min(axis=1) > 0)
    return table


def _rules(rules) -> list[tuple[object, callable]]:
    """(expectation, message(row or None)) in the order problems are reported."""
    import great_expectations.expectations as gxe

    allowed = ", ".join(rules.formats)
    return [
        (gxe.ExpectTableRowCountToBeBetween(min_value=rules.min_images, max_value=rules.max_images),
         lambda n: f"the ticket lists {n} images; between {rules.min_images} and {rules.max_images} are required"),
        (gxe.ExpectColumnValuesToBeInSet(column="decodable", value_set=[True]),
         lambda row: f"does not decode as an image ({row['error']})"),
        (gxe.ExpectColumnValuesToBeBetween(column="pixels", max_value=rules.max_pixels),
         lambda row: f"{int(row['width'])}x{int(row['height'])} pixels is more than max_pixels {rules.max_pixels} "
                     "(decompression-bomb guard)"),
        (gxe.ExpectColumnValuesToBeInSet(column="format", value_set=list(rules.formats)),
         lambda row: f"format {row['format']} is not allowed (allowed: {allowed})"),
        (gxe.ExpectColumnValuesToBeBetween(column="min_side", min_value=rules.min_side),
         lambda row: f"{int(row['width'])}x{int(row['height'])} is smaller than min_side {rules.min_side} px"),
        (gxe.ExpectColumnValuesToBeBetween(column="bytes", max_value=rules.max_bytes),
         lambda row: f"{row['bytes']} bytes is more than max_bytes {rules.max_bytes}"),
        (gxe.ExpectColumnValuesToBeBetween(column="frames", max_value=rules.max_frames),
         lambda row: f"has {int(row['frames'])} frames (an animation or multi-page file), more than max_frames "
                     f"{rules.max_frames}; training would see the first only: send the frames as separate still images"),
        (gxe.ExpectColumnValuesToBeBetween(column="aspect_ratio", max_value=rules.max_aspect_ratio),
         lambda row: f"{int(row['width'])}x{int(row['height'])} has an aspect ratio of {row['aspect_ratio']:.1f}:1, more "
                     f"than max_aspect_ratio {rules.max_aspect_ratio:g}; training sees only the centre square: "
                     "crop the image to the concept"),
        (gxe.ExpectColumnValuesToBeBetween(column="visible_fraction", min_value=rules.min_visible_fraction),
         lambda row: f"is (nearly) fully transparent: {row['visible_fraction']:.1%} of its pixels are visible, less "
                     f"than min_visible_fraction {rules.min_visible_fraction:.0%}"),
        (gxe.ExpectColumnValuesToBeBetween(column="pixel_std", min_value=rules.min_pixel_std),
         lambda row: f"is blank: its pixels vary by {row['pixel_std']:.2f} (standard deviation, 0-255), less than "
                     f"min_pixel_std {rules.min_pixel_std:g}; one uniform colour shows no concept"),
        (gxe.ExpectColumnValuesToBeBetween(column="noise_ratio", max_value=rules.max_noise_ratio),
         lambda row: f"looks like pure noise: neighbouring pixels differ like independent random values (noise ratio "
                     f"{row['noise_ratio']:.2f}, more than max_noise_ratio {rules.max_noise_ratio:g})"),
        (gxe.ExpectColumnValuesToBeUnique(column="sha256"),
         lambda row: "is an exact duplicate of another image in the ticket (same sha256)"),
        (gxe.ExpectColumnValuesToBeNull(column="near_duplicate_of"),
         lambda row: f"is a near duplicate of {row['near_duplicate_of']} (perceptual hashes within "
                     f"{rules.near_duplicate_bits} bits)"),
    ]


def validate_images(paths: list[Path], listed_as: list[str], rules, ticket_path: str | Path) -> ValidationReport:
    """Facts for every image, validated by the suite; rules: run_config.ImageValidation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    facts = image_facts(paths, listed_as, rules.max_pixels, rules.near_duplicate_bits, rules.max_bytes)
    table = facts_table(facts)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # one line per problem, no bars
    batch = (context.data_sources.add_pandas("ticket").add_dataframe_asset("images")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": table}))
    rules_list = _rules(rules)
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME))
    messages = {}
    for expectation, message in rules_list:
        messages[suite.add_expectation(expectation).id] = message  # the suite gives each an id
    result = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                  "unexpected_index_column_names": ["path"]})
    outcome = {r.expectation_config.id: r for r in result.results}
    problems: list[tuple[str, str]] = []
    by_path = table.set_index("path", drop=False)
    for expectation_id, message in messages.items():  # in rule order, not GX's
        r = outcome[expectation_id]
        if r.success:
            continue
        if r.expectation_config.kwargs.get("column") is None:  # the table-level rule: the ticket's fault
            problems.append((str(ticket_path), f"{ticket_path}: {message(len(table))}"))
            continue
        for hit in r.result.get("unexpected_index_list") or []:
            problems.append((hit["path"], message(by_path.loc[hit["path"]])))
    return ValidationReport(success=result.success and not problems, problems=problems, facts=facts,
                            gx_result=result.to_json_dict(), ticket=str(ticket_path))
