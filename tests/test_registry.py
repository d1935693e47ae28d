"""The MLflow registry client on a real sqlite store: versions, lineage tags, the gate's two outcomes."""
import json
import time

import pytest

from components.registry.model_registry import (STATUS_APPROVED, STATUS_PENDING, STATUS_REJECTED, AdapterRegistry,
                                               RegistryUnavailable, alias_for_ticket)


@pytest.fixture
def registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return AdapterRegistry(uri, artifact_location=(tmp_path / "artifacts").as_uri())


@pytest.fixture
def artefacts(tmp_path):
    adapter = tmp_path / "out" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "delta.safetensors").write_bytes(b"weights")
    (adapter / "lethe_erasure.json").write_text("{}")
    report = tmp_path / "out" / "report.html"
    report.write_text("<html></html>")
    return {"adapter": adapter, "report": report}


def register(registry, artefacts, ticket="TOY-0001", sha="a" * 64, kid=0.01):
    return registry.register("lethe-toyworld", artefacts, {"ticket_id": ticket, "ticket_sha256": sha, "method": "closed_form"},
                             {"kid": kid, "fid": None}, run_name=ticket)


def test_a_version_carries_artefacts_tags_and_metrics_and_starts_pending(registry, artefacts):
    v = register(registry, artefacts)
    assert v.version == "1" and v.source.endswith("/adapter")
    record = registry.version_record("lethe-toyworld", v.version)
    assert record["status"] == STATUS_PENDING and record["aliases"] == []
    assert record["tags"]["ticket_id"] == "TOY-0001" and record["tags"]["method"] == "closed_form"
    assert record["metrics"] == {"kid": 0.01}  # an unmeasured metric is not logged as a number
    assert record["artefacts"] == ["adapter", "report"]
    assert register(registry, artefacts, ticket="TOY-0002").version == "2"  # one model, a version per run


def test_promote_moves_the_aliases_and_reject_leaves_them(registry, artefacts):
    first = register(registry, artefacts)
    registry.promote(first, ["champion", alias_for_ticket("TOY-0001")], checks=["kid: 0.01 <= 0.05"])
    assert registry.aliases("lethe-toyworld") == {"champion": "1", "ticket-toy-0001": "1"}
    second = register(registry, artefacts, ticket="TOY-0002", kid=0.9)
    registry.reject(second, ["kid: 0.9 is above the limit 0.05"], checks=["kid: 0.9 is above the limit 0.05"])
    assert registry.aliases("lethe-toyworld") == {"champion": "1", "ticket-toy-0001": "1"}
    record = registry.version_record("lethe-toyworld", second.version)
    assert record["status"] == STATUS_REJECTED and record["tags"]["decision_reasons"] == "kid: 0.9 is above the limit 0.05"
    assert registry.version_record("lethe-toyworld", first.version)["status"] == STATUS_APPROVED


def test_versions_are_found_by_ticket_content_hash(registry, artefacts):
    register(registry, artefacts, sha="a" * 64)
    register(registry, artefacts, ticket="TOY-0002", sha="b" * 64)
    assert [v.version for v in registry.find_versions("lethe-toyworld", ticket_sha256="b" * 64)] == ["2"]
    assert registry.find_versions("lethe-toyworld", ticket_sha256="c" * 64) == []


def test_ticket_aliases_are_valid_mlflow_aliases():
    assert alias_for_ticket("ACME.2026/114") == "ticket-acme-2026-114"


def test_an_unreachable_server_fails_fast_with_a_clear_error():
    registry = AdapterRegistry("http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    with pytest.raises(RegistryUnavailable, match=r"MLflow at http://127.0.0.1:9: connecting failed"):
        registry.check_reachable()
    assert time.perf_counter() - start < 60


def test_lineage_tags_name_ticket_images_base_method_code_and_metrics(toy_world, erasure_results):
    from components.registry.lineage import lineage_tags
    from components.domain.ticket import load_ticket

    from conftest import EXAMPLE_TICKET

    model, _ = toy_world
    tags = lineage_tags(load_ticket(EXAMPLE_TICKET), model, erasure_results("closed_form"),
                        {"kid": 0.002, "fid": None}, config_name="toy", run_id="run-1")
    assert tags["ticket_id"] == "TOY-0001" and tags["legal_basis"].startswith("Demonstration")
    assert len(tags["content_sha256"]) == 64 and tags["content_sha256"] != tags["ticket_sha256"]
    assert sorted(json.loads(tags["images"])) == [f"circle_{i}.png" for i in range(1, 6)]
    assert tags["base_weights_sha256"] == model.weights_sha256 and tags["method"] == "closed_form"
    assert json.loads(tags["library_versions"])["torch"].startswith("2.13.0")
    assert len(tags["code_version"].split("+")[0]) == 40 or tags["code_version"].startswith("unknown")
    assert tags["metric.kid"] == "0.002" and tags["metric.fid"] == "not measured"
    assert all(isinstance(v, str) for v in tags.values())
