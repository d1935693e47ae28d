"""Where a takedown's wall time went: per step, ZenML's recorded duration against the compute inside it.

    lethe demo                                   # or any `lethe takedown`
    python -m benchmarks.takedown_breakdown      # reads the newest takedown run of $LETHE_HOME (default .lethe)

Compute is what the components timed themselves: TI (lethe_token.json), the erasure
(lethe_erasure.json), and the evaluation's generation and attack (metrics.json). The rest of a step
(model loading, artefact writing, ZenML and MLflow bookkeeping) is reported as overhead.
"""
from __future__ import annotations

import json

from pipelines.local_stack import configure_environment


def main() -> None:
    configure_environment()
    from zenml.client import Client

    runs = Client().list_pipeline_runs(pipeline_name="takedown_pipeline", sort_by="desc:created", size=1, hydrate=True)
    if not runs.items:
        raise SystemExit("no takedown run found; run `lethe demo` first")
    run = runs.items[0]
    steps = {name: step for name, step in run.steps.items()}

    def seconds(step) -> float:
        return (step.end_time - step.start_time).total_seconds() if step.end_time and step.start_time else float("nan")

    (ticket,) = steps["evaluate_adapter"].outputs["evaluated"][0].load().runs
    info = json.loads((ticket.evaluation.report_dir / "metrics.json").read_text())["info"]
    compute = {"learn_concept_token": ticket.token.wall_time_s, "train_unlearning": ticket.result.wall_time_s,
               "evaluate_adapter": info["generation_s"] + info["attack_s"]}
    total = (run.end_time - run.start_time).total_seconds() if run.end_time else float("nan")
    rows = []
    for name in ("admit_ticket", "validate_ticket_images", "learn_concept_token", "train_unlearning", "evaluate_adapter",
                 "register_adapter", "gate"):
        wall = seconds(steps[name])
        rows.append({"step": name, "wall_s": round(wall, 1), "compute_s": round(compute.get(name, 0.0), 1),
                     "cached": str(steps[name].status) == "cached"})
    in_steps = sum(r["wall_s"] for r in rows)
    print(json.dumps({"run": run.name, "method": ticket.result.method, "pipeline_wall_s": round(total, 1),
                      "steps_wall_s": round(in_steps, 1), "compute_s": round(sum(compute.values()), 1),
                      "outside_steps_s": round(total - in_steps, 1), "steps": rows}, indent=2))


if __name__ == "__main__":
    main()
