"""`lethe release export DIR`: the served artefact, a standard diffusers pipeline folder with the release
fused into its weights (safetensors only), and a manifest saying which release, tickets and hashes it is.

Plain `StableDiffusionPipeline.from_pretrained(DIR)` loads it in a process that has no Lethe code; the
manifest lets the serving side check what it serves against the registry. Where the release changes only the
text encoder, `lora/` holds the same change as one LoRA file (diffusers' format and kohya's, lora_file.py) for
stacks that apply LoRAs to the stock base; the manifest says which files, or why there are none.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..domain.hashing import file_sha256
from ..registry.release_registry import release_model_name
from .building import ReleaseError, read_record, stored_weights
from .lora_file import LoraFileRefused, release_lora, write_lora_files

MANIFEST = "lethe_release_manifest.json"
LORA_FOLDER = "lora"


class ExportError(RuntimeError):
    """The release cannot be exported as asked (no production, a changed artefact, a folder in the way)."""


def export_release(model, registry, releases, registry_name: str, out: Path, version: str | None = None,
                   overwrite: bool = False) -> Path:
    """Write release `version` (default: production) over `model` (the base, a LoadedModel) to `out`."""
    name = release_model_name(registry_name)
    version = version or releases.production_version(name)
    if version is None:
        raise ExportError(f"{name} has no production release yet; nothing to export")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ExportError(f"{out} exists and is not empty; give an empty folder (or --overwrite)")
        shutil.rmtree(out)
    record = read_record(releases, name, version)
    if record.base_weights_sha256 != model.weights_sha256:
        raise ExportError(f"release {version} was built on base weights {record.base_weights_sha256[:12]}…, the loaded "
                          f"base model has {model.weights_sha256[:12]}…")
    try:
        release = stored_weights(releases, name, version, record)
    except ReleaseError as err:
        raise ExportError(str(err)) from err
    pipe = release.fused_copy(model.pipeline)
    pipe.save_pretrained(out, safe_serialization=True)
    try:
        lora = release_lora(release, model.pipeline)
        written = write_lora_files(lora, out / LORA_FOLDER)
        lora_info = {"folder": LORA_FOLDER, "files": written, "rank": lora.rank, "max_abs_error": lora.max_error,
                     "norms": sorted(lora.norms)}
    except LoraFileRefused as refused:
        lora_info = {"not_written": str(refused)}
    files = {str(p.relative_to(out)): file_sha256(p) for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = {"release": name, "version": version, "tickets": record.tickets, "concepts": record.concepts,
                "takedowns": [e.__dict__ for e in record.entries], "weights_sha256": record.weights_sha256,
                "base_model": model.source, "base_weights_sha256": record.base_weights_sha256, "files": files,
                "registry": registry.tracking_uri, "lora": lora_info}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return out
