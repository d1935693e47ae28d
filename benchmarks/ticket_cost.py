"""One ticket's device time: TI, the erasure and the evaluation, from the benchmark's measured rows.

The evaluation is not run in full at SD scale (hundreds of images); its work is counted from the config
(components.evaluation.workload) and priced at the seconds per image and per TI step that the suite
measured on this device. Reported with the original model's images from the cache (warm: what a
takedown costs once the base model's images exist) and without (cold: the first ticket on a base model).
"""
from __future__ import annotations

ERASURE_ROW = {"lora_ti": "a", "te_ascent": "b", "closed_form": "c_1"}
GOAL_GPU_SECONDS = 60  # issue 17: ~1,000 tickets a day on one GPU


def _per(row: dict, key: str, count: float) -> float:
    return row["unet_passes"][key] / count if row.get("unet_passes") else 0.0


def ticket_cost(rows: dict[str, dict], method: str, workload) -> dict | None:
    """rows: the suite's results by name (needs ti, the method's row and generation); workload: an
    EvaluationWorkload. None when a needed row was not measured."""
    ti, erasure, gen = rows.get("ti"), rows.get(ERASURE_ROW.get(method, "")), rows.get("generation")
    if not (ti and erasure and gen):
        return None
    image_s = gen["seconds"] / gen["images"]
    image_passes = _per(gen, "forward", gen["images"])
    ti_step_s = ti.get("seconds_per_step", ti["seconds"] / ti["config_steps"])
    ti_setup_s = ti.get("setup_seconds", 0.0)
    attack_ti_s = workload.ti_runs() * (ti_setup_s + workload.attack_ti_steps * ti_step_s)
    attack_ti_passes = {k: workload.ti_runs() * workload.attack_ti_steps * _per(ti, k, ti["config_steps"])
                        for k in ("forward", "backward")}

    def stage(seconds: float, forward: float, backward: float = 0.0) -> dict:
        return {"seconds": seconds, "unet_passes": {"forward": round(forward), "backward": round(backward)}}

    stages = {"ti": stage(ti["seconds"], **(ti.get("unet_passes") or {"forward": 0})),
              "erasure": stage(erasure["seconds"], **(erasure.get("unet_passes") or {"forward": 0}))}
    for name, cached in (("evaluation_warm", True), ("evaluation_cold", False)):
        images = workload.images(original_cached=cached)
        stages[name] = stage(images * image_s + attack_ti_s, images * image_passes + attack_ti_passes["forward"],
                             attack_ti_passes["backward"])
    fixed = stages["ti"]["seconds"] + stages["erasure"]["seconds"]
    out = {"method": method, "workload": workload.as_dict(), "stages": stages,
           "seconds_per_image": image_s, "seconds_per_ti_step": ti_step_s,
           "extrapolated": any(r["extrapolated"] for r in (ti, erasure, gen)),
           "gpu_seconds_warm": fixed + stages["evaluation_warm"]["seconds"],
           "gpu_seconds_cold": fixed + stages["evaluation_cold"]["seconds"], "goal_gpu_seconds": GOAL_GPU_SECONDS}
    out["times_over_goal_warm"] = out["gpu_seconds_warm"] / GOAL_GPU_SECONDS
    return out


def ticket_table(cost: dict) -> str:
    lines = [f"per ticket, method {cost['method']} ({cost['workload']['images_warm']} images warm / "
             f"{cost['workload']['images_cold']} cold, {cost['workload']['attack_ti_runs'] + cost['workload']['control_ti_runs']}"
             f" attack TI runs of {cost['workload']['attack_ti_steps']} steps)",
             "| stage | seconds | U-Net passes fwd / bwd |", "|---|---|---|"]
    for name, s in cost["stages"].items():
        lines.append(f"| {name} | {s['seconds']:.4g} | {s['unet_passes']['forward']} / {s['unet_passes']['backward']} |")
    lines.append(f"| total, warm cache | {cost['gpu_seconds_warm']:.4g} | goal {cost['goal_gpu_seconds']} s: "
                 f"{cost['times_over_goal_warm']:.2g}x |")
    lines.append(f"| total, cold cache | {cost['gpu_seconds_cold']:.4g} | |")
    return "\n".join(lines)
