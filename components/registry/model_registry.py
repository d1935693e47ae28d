"""The adapter registry: MLflow's model registry, one registered model per base model, one version per ticket run.

Rules it enforces: a version is created "pending" with its artefacts and lineage tags; only `promote`
sets aliases, and the gate calls it only on a passing decision; `reject` tags the version with the
reasons and never touches aliases. Versions carry the ticket file's sha256, so a sweep can tell that
a ticket was already processed.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

TAG = "lethe."  # every Lethe tag starts with this, so audits can tell them from MLflow's own
STATUS_PENDING, STATUS_APPROVED, STATUS_REJECTED = "pending_gate", "approved", "rejected"
DEFAULT_EXPERIMENT = "lethe-takedowns"
MAX_TAG_VALUE = 5000  # MLflow's limit for a model-version tag; full records travel as artefacts


class RegistryUnavailable(RuntimeError):
    """The tracking/registry server cannot be reached or refused the request."""


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    source: str


def alias_for_ticket(ticket_id: str) -> str:
    """MLflow aliases allow letters, digits, '_' and '-'; ticket ids may also hold '.'."""
    return "ticket-" + re.sub(r"[^A-Za-z0-9_-]", "-", ticket_id).lower()


class AdapterRegistry:
    def __init__(self, tracking_uri: str, registry_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
                 artifact_location: str | None = None):
        from mlflow import MlflowClient

        # Fail fast on an unreachable server instead of MLflow's minutes of retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri or tracking_uri
        self.experiment, self.artifact_location = experiment, artifact_location
        self.client = MlflowClient(self.tracking_uri, self.registry_uri)

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # MLflow raises MlflowException, requests errors, sqlalchemy errors...
            raise RegistryUnavailable(f"MLflow at {self.tracking_uri}: {what} failed: {err}") from err

    def check_reachable(self) -> None:
        self._call("connecting", self.client.search_experiments, max_results=1)

    def experiment_id(self) -> str:
        found = self._call("reading the experiment", self.client.get_experiment_by_name, self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(self.experiment, artifact_location=self.artifact_location)
        except Exception as err:  # noqa: BLE001 - another client may have created it since we looked
            found = self._call("reading the experiment", self.client.get_experiment_by_name, self.experiment)
            if found is not None:
                return found.experiment_id
            raise RegistryUnavailable(f"MLflow at {self.tracking_uri}: creating the experiment failed: {err}") from err

    def find_versions(self, name: str, **tags: str) -> list[RegisteredVersion]:
        """Versions of `name` whose lethe.<key> tags equal the given values, newest first."""
        query = " and ".join([f"name='{name}'", *(f"tags.`{TAG}{k}`='{v}'" for k, v in tags.items())])
        found = self._call("searching versions", self.client.search_model_versions, query)
        return [RegisteredVersion(name, str(v.version), v.run_id, v.source)
                for v in sorted(found, key=lambda v: int(v.version), reverse=True)]

    def register(self, name: str, artefacts: dict[str, Path], tags: dict[str, str], metrics: dict[str, float | None],
                 run_name: str, description: str = "", source_key: str = "adapter") -> RegisteredVersion:
        """One MLflow run holding the artefacts (folder or file per key), metrics and tags, and one new
        version of `name` whose source is the run's `source_key` artefact; the version starts pending."""
        exp = self.experiment_id()
        tags = {TAG + k: str(v)[:MAX_TAG_VALUE] for k, v in tags.items()}
        run = self._call("starting a run", self.client.create_run, exp, run_name=run_name, tags=tags)
        run_id = run.info.run_id
        try:
            for key, path in artefacts.items():
                path = Path(path)
                if path.is_dir():
                    self._call(f"logging {key}", self.client.log_artifacts, run_id, str(path), key)
                else:
                    self._call(f"logging {key}", self.client.log_artifact, run_id, str(path), key)
            for metric, value in metrics.items():
                if value is not None:
                    self._call("logging metrics", self.client.log_metric, run_id, metric, float(value))
            if not self._call("reading the model", self._exists, name):
                try:
                    self.client.create_registered_model(
                        name, description="Lethe releases of one base model" if source_key == "release"
                        else "Lethe unlearning adapters for one base model")
                except Exception as err:  # noqa: BLE001 - another client may have created it since we looked
                    if not self._call("reading the model", self._exists, name):
                        raise RegistryUnavailable(f"MLflow at {self.tracking_uri}: creating the registered model "
                                                  f"failed: {err}") from err
            version = self._call("creating the version", self.client.create_model_version, name,
                                 f"{run.info.artifact_uri}/{source_key}", run_id=run_id, description=description,
                                 tags={**tags, TAG + "status": STATUS_PENDING})
        except RegistryUnavailable:
            self._call("closing the run", self.client.set_terminated, run_id, "FAILED")
            raise
        self._call("closing the run", self.client.set_terminated, run_id, "FINISHED")
        return RegisteredVersion(name, str(version.version), run_id, version.source)

    def _exists(self, name: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
            return True
        except MlflowException as err:
            if "RESOURCE_DOES_NOT_EXIST" in str(err.error_code):
                return False
            raise

    def _tag(self, version: RegisteredVersion, key: str, value: str) -> None:
        self._call("tagging", self.client.set_model_version_tag, version.name, version.version, TAG + key,
                   str(value)[:MAX_TAG_VALUE])

    def promote(self, version: RegisteredVersion, aliases: list[str], checks: list[str]) -> None:
        """Only for a passing gate decision: record the checks, tag approved, then move every alias here."""
        self._tag(version, "decision_checks", "\n".join(checks))
        self._tag(version, "status", STATUS_APPROVED)
        for alias in aliases:
            self._call(f"setting alias {alias}", self.client.set_registered_model_alias, version.name, alias, version.version)

    def reject(self, version: RegisteredVersion, reasons: list[str], checks: list[str]) -> None:
        """A failing decision: tag rejected with the reasons; aliases stay where they were."""
        self._tag(version, "decision_checks", "\n".join(checks))
        self._tag(version, "decision_reasons", "\n".join(reasons))
        self._tag(version, "status", STATUS_REJECTED)

    def aliases(self, name: str) -> dict[str, str]:
        model = self._call("reading the model", self.client.get_registered_model, name)
        return {alias: str(version) for alias, version in model.aliases.items()}

    def version_record(self, name: str, version: str) -> dict:
        """Everything recorded for one version: its tags, aliases, status, run metrics and artefact list."""
        v = self._call("reading the version", self.client.get_model_version, name, version)
        run = self._call("reading the run", self.client.get_run, v.run_id)
        artefacts = self._call("listing artefacts", self.client.list_artifacts, v.run_id)
        aliases = [a for a, ver in self.aliases(name).items() if str(ver) == str(version)]
        return {"name": name, "version": str(version), "source": v.source, "run_id": v.run_id,
                "created": v.creation_timestamp, "aliases": aliases,
                "status": v.tags.get(TAG + "status"),
                "tags": {k.removeprefix(TAG): val for k, val in v.tags.items() if k.startswith(TAG)},
                "metrics": dict(run.data.metrics), "artefacts": sorted(a.path for a in artefacts)}
