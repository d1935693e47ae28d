"""The production release as the starting point of a new takedown's training (erasure/starting_point.py says why).

Read from the registry as production serves it: the release version's stored weights, checked against the weights
hash its record holds and against the run's base model. A production release that holds no takedowns (none yet,
or every ticket withdrawn) is the base model: no starting point.
"""
from __future__ import annotations

from ..erasure.starting_point import StartingPoint
from ..registry.model_registry import AdapterRegistry
from ..registry.release_registry import ReleaseRegistry, release_model_name
from .building import ReleaseError, production, stored_weights


def production_start(registry: AdapterRegistry, registry_name: str, base_weights_sha256: str) -> StartingPoint | None:
    releases = ReleaseRegistry(registry)
    version, record = production(releases, registry_name)
    if record is None or not record.entries:
        return None
    name = release_model_name(registry_name)
    if record.base_weights_sha256 != base_weights_sha256:
        raise ReleaseError(f"production release {version} of {name} was built on base weights "
                           f"{record.base_weights_sha256[:12]}…, this run's base is {base_weights_sha256[:12]}…: "
                           "a takedown cannot be trained on top of it")
    label = {"release": str(version), "tickets": record.tickets, "weights_sha256": record.weights_sha256}
    return StartingPoint(stored_weights(releases, name, version, record), label)
