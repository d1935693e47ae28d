"""Releases in MLflow's model registry: one registered model per base model (`<registry_name>-release`),
one version per release built, aliases `production` (what serving loads) and `candidate`.

A release version's run holds the release record (lethe_release.json: its takedowns, the release it
replaced, why, by whom), the composed weights (a WeightDelta over the base) and the verification report.
The takedowns' own registered model keeps one version per ticket run: the audit unit a release lists.

Promotion is a compare-and-set on `production`: under a lock, `production` is re-read, and the alias moves
only if it still points at the release the candidate was built on. If it moved, the caller rebuilds on the
new production and verifies again. The lock is a registered model created for the purpose: the server's
unique-name constraint makes taking it atomic for every client of one MLflow server, and a lock older than
its lease (a crashed holder) is broken by the next caller.
"""
from __future__ import annotations

import getpass
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .model_registry import TAG, AdapterRegistry, RegisteredVersion, RegistryUnavailable

RELEASE_SUFFIX = "-release"
PRODUCTION, CANDIDATE = "production", "candidate"
LOCK_SUFFIX = "-release-lock"
LOCK_LEASE_S = 60.0  # a promotion holds the lock for seconds; a holder older than this has died, and a
# waiting promotion (wait_s, 120 s) outlives it: a crash delays the next promotion, it does not fail it
RELEASE_EXPERIMENT = "lethe-releases"


def release_model_name(registry_name: str) -> str:
    return registry_name + RELEASE_SUFFIX


def actor() -> str:
    """Who acted: LETHE_ACTOR (set by a scheduler or CI), else the OS user."""
    try:
        return os.environ.get("LETHE_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class ProductionMoved(RuntimeError):
    """`production` no longer points at the release a candidate was built on: rebuild on the new one."""

    def __init__(self, expected: str | None, found: str | None):
        self.expected, self.found = expected, found
        super().__init__(f"production moved from release {expected or 'none'} to {found or 'none'} while the "
                         "candidate was built")


class LockTimeout(RuntimeError):
    """Another promotion held the release lock for longer than we were willing to wait."""


class ReleaseRegistry:
    def __init__(self, registry: AdapterRegistry):
        self.registry = AdapterRegistry(registry.tracking_uri, registry.registry_uri, RELEASE_EXPERIMENT,
                                        registry.artifact_location)
        self.client = self.registry.client

    # --- writing ---------------------------------------------------------------------------------------
    def register(self, name: str, artefacts: dict[str, Path], tags: dict[str, str], metrics: dict,
                 description: str) -> RegisteredVersion:
        """A pending release version of `name` (the release model); its source is the `release` artefact."""
        return self.registry.register(name, artefacts, tags, metrics, run_name=f"release of {name}",
                                      description=description, source_key="release")

    def set_candidate(self, version: RegisteredVersion) -> None:
        self.registry._call("setting alias candidate", self.client.set_registered_model_alias, version.name, CANDIDATE,
                            version.version)

    def promote(self, version: RegisteredVersion, expected: str | None, checks: list[str],
                wait_s: float = 120.0) -> None:
        """Move `production` to `version` if it still points at `expected` (None: no production yet);
        raise ProductionMoved otherwise. Records the checks and marks the version approved."""
        with self._production_is(version.name, expected, wait_s):
            self.registry.promote(version, [PRODUCTION], checks)

    def move_production(self, name: str, version: str, expected: str | None, wait_s: float = 120.0) -> None:
        """A rollback: `production` to an earlier, already verified release (compare-and-set as above)."""
        with self._production_is(name, expected, wait_s):
            self.registry._call("setting alias production", self.client.set_registered_model_alias, name, PRODUCTION,
                                version)

    def record_event(self, name: str, version: str, event: dict) -> None:
        """An event in a release's history (a rollback to or from it): a timestamped tag with who and why."""
        import json
        from datetime import datetime, timezone

        when = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        self.registry._call("recording an event", self.client.set_model_version_tag, name, version,
                            f"{TAG}event.{when.replace(':', '-').replace('+', 'Z')}",
                            json.dumps({**event, "at": when}, sort_keys=True))

    def reject(self, version: RegisteredVersion, reasons: list[str], checks: list[str]) -> None:
        self.registry.reject(version, reasons, checks)

    # --- reading ---------------------------------------------------------------------------------------
    def production_version(self, name: str) -> str | None:
        if not self.registry._call("reading the release model", self.registry._exists, name):
            return None
        return self.registry.aliases(name).get(PRODUCTION)

    def record_data(self, name: str, version: str, record_file: str) -> dict:
        """The release record (release.record.ReleaseRecord's JSON) stored with a release version."""
        import json

        with self.downloaded(name, version, f"record/{record_file}") as record:
            return json.loads(record.read_text())

    def download(self, name: str, version: str, artefact: str, dst: Path) -> Path:
        """A local copy of one artefact (file or folder) of a release version, in `dst`."""
        v = self.registry._call("reading the version", self.client.get_model_version, name, version)
        return Path(self.registry._call(f"downloading {artefact}", self.client.download_artifacts, v.run_id, artefact,
                                        str(dst)))

    @contextmanager
    def downloaded(self, name: str, version: str, artefact: str):
        """download() into a temporary folder that is removed when the block ends: every release change reads
        records and weights, and a long-lived host (a sweep runner, an operator's shell) must not fill its disk."""
        with tempfile.TemporaryDirectory(prefix=f"lethe-release-{version}-") as where:
            yield self.download(name, version, artefact, Path(where))

    def versions(self, name: str) -> list[dict]:
        """Every release version, oldest first, as registry records (tags, aliases, status)."""
        if not self.registry._call("reading the release model", self.registry._exists, name):
            return []
        found = self.registry.find_versions(name)
        return [self.registry.version_record(name, v.version) for v in reversed(found)]

    def containing(self, name: str, ticket_id: str) -> list[dict]:
        """Every release version (oldest first) whose record lists `ticket_id`."""
        import json

        return [r for r in self.versions(name) if ticket_id in json.loads(r["tags"].get("tickets", "[]"))]

    # --- the lock --------------------------------------------------------------------------------------
    def lock(self, name: str, wait_s: float):
        return _RegistryLock(self.registry, name.removesuffix(RELEASE_SUFFIX) + LOCK_SUFFIX, wait_s)

    @contextmanager
    def _production_is(self, name: str, expected: str | None, wait_s: float):
        """The compare of the compare-and-set: hold the lock, and go on only if production is `expected`."""
        with self.lock(name, wait_s):
            found = self.production_version(name)
            if found != expected:
                raise ProductionMoved(expected, found)
            yield


class _RegistryLock:
    """A lease lock: creating a registered model is atomic on the server (unique names)."""

    def __init__(self, registry: AdapterRegistry, name: str, wait_s: float, poll_s: float = 0.2):
        self.registry, self.name, self.wait_s, self.poll_s = registry, name, wait_s, poll_s

    def __enter__(self):
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                holder = {TAG + "lock_taken_at": f"{time.time():.3f}", TAG + "lock_holder": f"{actor()}@{os.getpid()}"}
                self.registry.client.create_registered_model(
                    self.name, tags=holder,
                    description="Lethe's release-promotion lock; deleted when the promotion ends")
                return self
            except MlflowException as err:
                if "RESOURCE_ALREADY_EXISTS" not in str(err.error_code) and "already exists" not in str(err):
                    raise RegistryUnavailable(f"MLflow at {self.registry.tracking_uri}: taking the release lock failed: "
                                              f"{err}") from err
            self._break_if_stale()
            if time.monotonic() > deadline:
                raise LockTimeout(f"the release lock {self.name} was held for more than {self.wait_s:.0f} s")
            time.sleep(self.poll_s)

    def _break_if_stale(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            held = self.registry.client.get_registered_model(self.name)
        except MlflowException:
            return  # released meanwhile
        taken = float(held.tags.get(TAG + "lock_taken_at", "0") or 0)
        if time.time() - taken > LOCK_LEASE_S:
            try:
                self.registry.client.delete_registered_model(self.name)
            except MlflowException:
                pass  # someone else broke it first

    def __exit__(self, *exc):
        from mlflow.exceptions import MlflowException

        try:
            self.registry.client.delete_registered_model(self.name)
        except MlflowException:
            pass  # broken as stale by another caller: nothing left to release
        return False
