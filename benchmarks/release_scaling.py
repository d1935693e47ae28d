"""Time to build and verify a release of 1, 2, 3 and 4 concepts on the toy world (CPU), and what it measured.

    python -m benchmarks.release_scaling [--out out/bench/release_scaling.json] [--method lora_ti]
                                         [--adversary-tokens N] [--candidates] [--on-base]

Per shape a fresh ticket (benchmarks.fresh_tickets), one takedown by the method, trained on top of the release
so far as the takedown pipeline does (method A; `--on-base` trains every one on the base model instead, the
earlier design), registered and approved in a temporary sqlite registry; then the release flow adds them one by
one (each release: production plus one ticket, verified for every concept in it with the config's default
evaluation, the attack on the new concept). Reported per release: concepts, build (compose) and verify seconds,
the verdict, and per concept its forget rate (95% upper end) with the joint retain and neighbour drops: the
interference. The original model's images come from one image cache, as in production (the first release fills
it). A rejected release leaves production as it was, so the next one holds one concept fewer than its number;
the rows say what each release held. `--adversary-tokens 0` trains method A without its adversarial rounds
(faster takedowns; the release's build and verification are the same work either way).

`--candidates` measures the sizes themselves: after the takedowns, the candidate of the first k tickets
(k = 1..4) is composed and verified directly (components.release: compose, verify_release; no registry,
production not involved), whatever the verdicts, so a rejected two-concept release does not stop the
three- and four-concept measurements; each takedown is then trained on top of the previous candidate.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.fresh_tickets import write_ticket

SHAPES = ("circle", "square", "triangle", "cross")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/bench/release_scaling.json"))
    parser.add_argument("--method", default="lora_ti")
    parser.add_argument("--adversary-tokens", type=int, default=None, help="method A's adversarial attackers "
                        "(default: the config's)")
    parser.add_argument("--config", type=Path, default=Path("configs/toy.yaml"))
    parser.add_argument("--candidates", action="store_true", help="compose and verify the candidate of the first "
                        "k tickets directly, k = 1..4, whatever the verdicts (no production)")
    parser.add_argument("--on-base", action="store_true", help="train every takedown on the base model, not on top "
                        "of the release so far")
    args = parser.parse_args()

    from components.config.run_config import load_run_config
    from components.domain.ticket import content_sha256, load_ticket
    from components.erasure.methods import erase
    from components.erasure.request import ErasureRequest
    from components.evaluation.prompt_sets import with_prompt_sets
    from components.models.loading import load_pipeline
    from components.registry.model_registry import AdapterRegistry
    from components.registry.release_registry import ReleaseRegistry
    from components.release.building import load_takedown
    from components.erasure.methods import TRAINS_ON_PRODUCTION
    from components.erasure.starting_point import StartingPoint
    from components.release.composition import compose
    from components.release.release_flow import change_release
    from components.release.training_start import production_start

    config = load_run_config(args.config)
    erasure = config.erasure.model_copy(update={"method": args.method})
    if args.adversary_tokens is not None:
        adversary = erasure.lora_ti.adversary.model_copy(update={"tokens": args.adversary_tokens})
        erasure = erasure.model_copy(update={"lora_ti": erasure.lora_ti.model_copy(update={"adversary": adversary})})
    config = config.model_copy(update={"erasure": erasure})
    tmp = Path(tempfile.mkdtemp(prefix="lethe-release-bench-"))
    registry = AdapterRegistry(f"sqlite:///{tmp / 'mlflow.db'}", artifact_location=(tmp / "artifacts").as_uri())
    releases = ReleaseRegistry(registry)
    model = load_pipeline(config.base_model.source, dtype=config.runtime.dtype)
    rows, takedowns = [], []
    for k, shape in enumerate(SHAPES):
        ticket = write_ticket(tmp / "tickets" / shape, shape, seed=300 + k)
        loaded = load_ticket(ticket)
        request = with_prompt_sets(ErasureRequest.from_ticket(loaded, seed=config.runtime.seed), config.evaluation)
        start = None
        if not args.on_base and config.erasure.method in TRAINS_ON_PRODUCTION:
            if args.candidates and takedowns:
                so_far = compose(model.pipeline, [t.entry for t, _ in takedowns], [t.result for t, _ in takedowns])
                start = StartingPoint(so_far, {"release": f"candidate of {len(takedowns)}",
                                               "tickets": [t.entry.ticket_id for t, _ in takedowns]})
            elif not args.candidates:
                start = production_start(registry, config.base_model.registry_name, model.weights_sha256)
        t0 = time.perf_counter()
        result = erase(model.pipeline, request, config.erasure, start=start)
        erase_s = time.perf_counter() - t0
        version = registry.register(config.base_model.registry_name, {"adapter": result.save(tmp / "adapters" / shape),
                                                                      "ticket": ticket},
                                    {"ticket_id": loaded.ticket.ticket_id, "content_sha256": content_sha256(loaded)}, {},
                                    run_name=shape)
        registry.promote(version, [], ["approved (benchmark)"])
        takedown = load_takedown(registry, config.base_model.registry_name, version.version)

        if args.candidates:
            takedowns.append((takedown, request))
            rows.append(candidate_row(model, config, takedowns, erase_s, tmp / "image-cache"))
            print(json.dumps(rows[-1]), flush=True)
            continue
        t0 = time.perf_counter()
        outcome = change_release(model, config, registry, releases, "takedown", "benchmark", tmp / f"r{k + 1}",
                                 add=[takedown], new_requests={takedown.entry.ticket_id: request},
                                 cache_folder=tmp / "image-cache")
        total = time.perf_counter() - t0
        summary = json.loads((outcome.report_dir / "release.json").read_text())
        metrics = json.loads((outcome.report_dir / "metrics.json").read_text())["metrics"]
        row = {"release": k + 1, "concepts": len(summary["per_concept"]), "names": list(summary["per_concept"]),
               "erase_s": round(erase_s, 1), "trained_on": result.hyperparameters.get("trained_on"),
               "compose_s": round(outcome.candidate.compose_s, 2), "release_s": round(total, 1),
               "promoted": outcome.promoted, "reasons": outcome.decision.reasons,
               "per_concept": {n: {"forget": m["forget_detection_rate"], "forget_high": m["forget_detection_rate_ci95_high"],
                                   "worst": m["forget_worst_rate"], "worst_prompt": m["worst_prompt"]}
                               for n, m in summary["per_concept"].items()},
               "retain_accuracy_drop": metrics.get("retain_accuracy_drop"),
               "retain_worst_drop": metrics.get("retain_worst_drop"),
               "neighbour_accuracy_drop": metrics.get("neighbour_accuracy_drop"),
               "neighbour_accuracy_drop_high": metrics.get("neighbour_accuracy_drop_ci95_high"),
               "attack_success": metrics.get("attack_success")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")


def candidate_row(model, config, takedowns: list, erase_s: float, cache_folder: Path) -> dict:
    """Compose and verify the release of every takedown so far (the last one is new: its attack runs)."""
    from components.release.composition import compose
    from components.release.verification import verify_release

    t0 = time.perf_counter()
    release = compose(model.pipeline, [t.entry for t, _ in takedowns], [t.result for t, _ in takedowns])
    compose_s = time.perf_counter() - t0
    requests = [t.request for t, _ in takedowns[:-1]] + [takedowns[-1][1]]
    t0 = time.perf_counter()
    verification = verify_release(model, release, requests, [takedowns[-1][1]], config, cache_folder=cache_folder)
    m = verification.evaluation.metrics
    return {"concepts": len(takedowns), "names": [t.entry.concept for t, _ in takedowns], "erase_s": round(erase_s, 1),
            "compose_s": round(compose_s, 2), "verify_s": round(time.perf_counter() - t0, 1),
            "images_drawn": verification.evaluation.info["images_drawn"],
            "promoted": verification.decision.passed, "reasons": verification.decision.reasons,
            "per_concept": {n: {"forget": c["forget_detection_rate"], "forget_high": c["forget_detection_rate_ci95_high"],
                                "worst": c["forget_worst_rate"], "worst_prompt": c["worst_prompt"]}
                            for n, c in verification.per_concept.items()},
            "retain_accuracy_drop": m.get("retain_accuracy_drop"), "retain_worst_drop": m.get("retain_worst_drop"),
            "neighbour_accuracy_drop": m.get("neighbour_accuracy_drop"), "attack_success": m.get("attack_success")}


if __name__ == "__main__":
    main()
