"""Lineage: everything an auditor needs to know about one adapter, as flat string tags for the registry.

What was erased (ticket, concept, images by sha256), from what (base model id, revision, weights
hash), how (method, hyperparameters, library versions, code version, config), by which run, with
which metrics. The full records (config, manifests, report) travel as artefacts beside the tags.
"""
from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

from ..domain.hashing import file_sha256
from ..domain.ticket import content_sha256

LIBRARIES = ("lethe", "torch", "diffusers", "transformers", "peft", "safetensors", "numpy", "great_expectations",
             "mlflow", "zenml")
REPO_ROOT = Path(__file__).resolve().parents[1]


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_version(repo: Path = REPO_ROOT) -> str:
    """The git commit of the code that ran, '+dirty' when it had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def lineage_tags(loaded_ticket, model, result, metrics: dict, config_name: str, run_id: str | None = None) -> dict[str, str]:
    """loaded_ticket: domain.ticket.LoadedTicket; model: models.loading.ModelIdentity (or a LoadedModel); result: an
    ErasureResult."""
    t = loaded_ticket.ticket
    tags = {
        "ticket_id": t.ticket_id, "ticket_sha256": loaded_ticket.sha256,
        "content_sha256": content_sha256(loaded_ticket), "concept": t.concept, "kind": t.kind.value,
        "requester": t.requester, "legal_basis": t.legal_basis, "ticket_created_at": t.created_at.isoformat(),
        "target_model": t.target_model,
        "images": _json({name: file_sha256(path) for name, path in zip(t.images, loaded_ticket.image_paths)}),
        "base_model": model.source, "base_revision": model.revision or "local folder",
        "base_weights_sha256": model.weights_sha256,
        "method": result.method, "hyperparameters": _json(result.hyperparameters),
        "changed_tensors": str(len(result.changed_tensors())), "erase_wall_time_s": f"{result.wall_time_s:.2f}",
        "library_versions": _json(library_versions()), "code_version": code_version(), "config": config_name,
        "run_id": run_id or "none",
    }
    tags.update({f"metric.{k}": "not measured" if v is None else f"{v:.6g}" for k, v in metrics.items()})
    return tags
