"""The before/after report: one self-contained HTML file (images embedded), the grid as PNG, metrics as JSON.

Written for the person who signs off a takedown: the verdict first, then every gated metric against
its limit in plain words, then the images that back the numbers (same seeds before and after).
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from .image_grid import Cell, labelled_grid
from .decision import Decision

REPORT_HTML, GRID_PNG, METRICS_JSON = "report.html", "grid.png", "metrics.json"
THUMB_MAX = 256  # px: larger images are shrunk for the report (SD's 512-768 px would make it huge)

# metric -> (what it means, in words; how it is shown)
EXPLAINED: dict[str, tuple[str, str]] = {
    "forget_detection_rate": ("Forget prompts (every way of asking for the concept): share of images in which the "
                              "detector still finds it", "pct"),
    "forget_worst_rate": ("Forget prompts: the same for the worst single prompt (one way of asking left intact)", "pct"),
    "forget_clip_score": ("Forget prompts: CLIP agreement between the images and the concept's name (0-100)", "num"),
    "collapse_rate": ("Forget prompts: share of images that are blank or noise (what an erased prompt turned into)", "pct"),
    "retain_accuracy": ("Held-out retain prompts: share of images the detector says still show what the prompt asks", "pct"),
    "retain_accuracy_drop": ("Held-out retain prompts: fall of that share, original to erased (points)", "pct"),
    "retain_worst_drop": ("Held-out retain prompts: the largest fall of a single prompt (one concept wiped out)", "pct"),
    "retain_clip_score": ("Held-out retain prompts: CLIP agreement between each image and its own prompt (0-100)", "num"),
    "retain_clip_drop": ("Held-out retain prompts: relative fall of that CLIP agreement, original to erased", "pct"),
    "neighbour_accuracy": ("Near neighbours: share of images that still show what the prompt asks", "pct"),
    "neighbour_accuracy_drop": ("Near neighbours: fall of that share, original to erased (points)", "pct"),
    "neighbour_worst_drop": ("Near neighbours: the largest fall of a single prompt", "pct"),
    "kid": ("Held-out retain prompts: KID between original and erased images on CLIP features (0 = same distribution)", "sci"),
    "fid": ("Held-out retain prompts: FID on CLIP features (only from 500 images per side)", "num"),
    "attack_token_rate": ("Recovery attack: concept rate of the strongest token learned by textual inversion on the "
                          "ticket's images (several restarts)", "pct"),
    "attack_control_rate": ("Recovery attack: the same attack on the original model, its strongest restart (the "
                            "control: below its minimum, the attack proves nothing)", "pct"),
    "attack_paraphrase_rate": ("Recovery attack: concept rate of prompts that describe it without its name", "pct"),
    "attack_success": ("Recovery attack: the worse of the two attack rates on the erased model", "pct"),
}
GROUPS = {
    "forget": ("Forget prompts", "Every way of asking for the concept. After erasure it should be gone; "
               "'draws instead' says what the detector sees in the erased model's images."),
    "retain": ("Retain prompts (held out)", "A corpus that never names the concept, held out from training. "
               "After erasure these should look the same."),
    "neighbour": ("Near neighbours", "Things close to the concept that must survive its erasure."),
    "paraphrase": ("Recovery attack: paraphrases", "Prompts that describe the concept without naming it."),
    "token": ("Recovery attack: learned tokens",
              "Textual inversion on the ticket's own images, run against each model, with several restarts. "
              "'Original' is the control: it shows the attack finds the concept when it is there (a later restart is "
              "run there only when the earlier ones miss the control's bar)."),
}


@dataclass
class ReportFiles:
    html: Path
    grid: Path
    metrics: Path


def _fmt(value, how: str) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return {"pct": f"{100 * value:.1f}%", "sci": f"{value:.4f}", "num": f"{value:.2f}"}[how]


def _with_interval(metrics: dict, key: str, how: str) -> str:
    """A value with its 95% interval (a rate) or its pessimistic end (a drop), when measured."""
    text = _fmt(metrics.get(key), how)
    low, high = metrics.get(f"{key}_ci95_low"), metrics.get(f"{key}_ci95_high")
    if metrics.get(key) is None or high is None:
        return text
    if low is None:
        return f"{text} (95% &le; {_fmt(high, how)})"
    return f"{text} [{_fmt(low, how)}, {_fmt(high, how)}]"


def _png(image: np.ndarray, max_side: int = THUMB_MAX) -> bytes:
    pil = Image.fromarray(image)
    if max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _img_tag(image: np.ndarray, flag, group: str) -> str:
    """An embedded image; its border says what the detector saw (red: concept found / prompt not matched)."""
    if flag is None:
        css, title = "", "not judged"
    elif group in ("retain", "neighbour"):
        css, title = ("ok", "matches its prompt") if flag else ("bad", "does not match its prompt")
    else:
        css, title = ("bad", "concept found") if flag else ("ok", "concept not found")
    data = base64.b64encode(_png(image)).decode("ascii")
    return f'<img class="{css}" title="{title}" alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def _images(images, flags, group: str, k: int) -> str:
    if images is None:
        return '<span class="muted">not drawn</span>'
    return "".join(_img_tag(im, None if flags is None else bool(flags[i]), group) for i, im in enumerate(images[:k]))


def _metric_table(metrics: dict, decision: Decision) -> str:
    checks = {c.metric: c for c in decision.checks}
    rows = []
    for name, (meaning, how) in EXPLAINED.items():
        check = checks.get(name)
        if name not in metrics and check is None:
            continue
        limit = "" if check is None else f"{'&le;' if check.bound == 'max' else '&ge;'} {_fmt(check.limit, how)}"
        verdict = ("" if check is None else
                   '<td class="pass">pass</td>' if check.passed else '<td class="fail">FAIL</td>')
        before_cell = _with_interval(metrics, f"{name}_before", how) if f"{name}_before" in metrics else ""
        rows.append(f"<tr><th>{html.escape(name)}</th><td>{html.escape(meaning)}</td><td>{before_cell}</td>"
                    f"<td>{_with_interval(metrics, name, how)}</td><td>{limit}</td>{verdict or '<td></td>'}</tr>")
    return ("<table class='metrics'><tr><th>metric</th><th>what it measures</th><th>original</th>"
            "<th>erased [95% interval]</th><th>limit</th><th>gate</th></tr>" + "".join(rows) + "</table>"
            "<p class='muted'>Rates carry their 95% Wilson interval; drops their pessimistic end. The gate compares "
            "the pessimistic end with the limit, so a few lucky images cannot pass.</p>")


def _sets_section(evaluation) -> str:
    """Which prompts were measured and why: the corpus split and every prompt removed for naming the concept."""
    sets = evaluation.info.get("prompt_sets")
    if not sets:
        return ""
    c = sets["corpus"]
    within = " within its content group" if c.get("split") == "by_content" else ""
    lines = [f"{len(sets['forget'])} forget prompts, {len(sets['retain'])} retain prompts, "
             f"{len(sets['neighbours'])} near neighbours, {len(sets['paraphrases'])} paraphrases.",
             f"Retain corpus: {c.get('total', 0)} prompts, {c.get('naming_the_concept', 0)} naming the concept left "
             f"out; {c.get('heldout', 0)} held out for evaluation, {c.get('training', 0)} for training "
             f"(split by a hash of each prompt{within}, {100 * c.get('heldout_fraction', 0):.0f}% held out)."]
    removed = "".join(f"<li><code>{html.escape(r['prompt'])}</code> ({html.escape(r['source'])}) names "
                      f"<code>{html.escape(r['names'])}</code></li>" for r in sets["removed"])
    instead = evaluation.info.get("forget_draws_instead") or {}
    drawn = ", ".join(f"{html.escape(k)}: {v}" for k, v in instead.items())
    return ("<h2>What was measured</h2><p>" + "<br>".join(html.escape(x) for x in lines) + "</p>"
            + (f"<p>Removed because they name the concept (recorded in lineage):</p><ul>{removed}</ul>" if removed else "")
            + (f"<p>The erased model's forget images, as the detector sees them: {drawn}.</p>" if drawn else ""))


def _stats(measure: str, side: dict) -> str:
    if not side:
        return ""
    rate = "" if side.get("rate") is None else (
        f"{measure}: {100 * side['rate']:.0f}% [{100 * side['low']:.0f}, {100 * side['high']:.0f}]")
    return f"<div class='stats'>{rate} &middot; CLIP {side['clip_score']:.1f}</div>"


def _prompt_sections(evaluation, k: int) -> str:
    out = []
    for group, (title, blurb) in GROUPS.items():
        rows = [r for r in evaluation.prompts if r.group == group]
        if not rows:
            continue
        out.append(f"<h2>{title}</h2><p>{blurb}</p><table class='prompts'>"
                   "<tr><th>prompt</th><th>original</th><th>erased</th></tr>")
        for r in rows:
            instead = ("<div class='stats'>draws instead: " + html.escape(", ".join(
                f"{k} {v}" for k, v in r.draws_instead.items())) + "</div>") if r.draws_instead else ""
            out.append(f"<tr><td class='prompt'>{html.escape(r.label or r.prompt)}{instead}</td>"
                       f"<td>{_images(r.images_before, r.flags_before, group, k)}{_stats(r.measure, r.before)}</td>"
                       f"<td>{_images(r.images_after, r.flags_after, group, k)}{_stats(r.measure, r.after)}</td></tr>")
        out.append("</table>")
    return "".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} .verdict{padding:.8em 1em;border-radius:6px;font-size:1.2em;margin:1em 0}
.verdict.pass{background:#e3f4e6;border:2px solid #2a8c3c} .verdict.fail{background:#fbe5e5;border:2px solid #c03030}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.35em .6em;text-align:left;vertical-align:top}
table.ids th{background:#f4f4f4;width:14em} td.pass{color:#2a8c3c;font-weight:bold} td.fail{color:#c03030;font-weight:bold}
img{width:72px;height:72px;image-rendering:pixelated;margin:2px;border:3px solid #ddd}
img.ok{border-color:#5cb85c} img.bad{border-color:#d9534f} .stats{font-size:.85em;color:#555}
.muted{color:#888} td.prompt{font-family:monospace;white-space:nowrap} ul.reasons{margin:.3em 0}
table.metrics td:nth-child(n+3){white-space:nowrap} table.ids td{word-break:break-word}
"""


def render_html(evaluation, decision: Decision, identifiers: dict[str, str], title: str, images_per_prompt: int = 4) -> str:
    verdict = ("PASSED: the gate may promote this adapter" if decision.passed
               else "REJECTED: the gate will not promote this adapter")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in decision.reasons)
    ids = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in identifiers.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in evaluation.info.get("notes", []))
    info = evaluation.info
    per_set = info.get("images_per_set") or {}
    totals = (" (in all: " + ", ".join(f"{g} {n}" for g, n in per_set.items()) + "; a small set gets more per prompt)"
              if info.get("min_images_per_set") else "")
    sequential, counts = info.get("sequential"), f"{info['images_per_prompt']} images per prompt{totals}"
    if sequential:  # the looks say what was drawn; the sets' intervals are wider than 95% per look
        looks = "; ".join(f"look {k + 1}: {look['images']} images of {look['prompts']} prompts, up to "
                          f"{look['images_per_prompt']} each" for k, look in enumerate(sequential["looks"]))
        counts = (f"drawn in looks ({looks}; {sequential['stopped']}), each look's interval widened so that all looks "
                  f"together hold 95% (z = {info['interval_z']:.3g})")
    setup = (f"{counts}, seed {info['seed']}, the same starting noise for both "
             f"models; the recovery attack: {info.get('attack_images_per_prompt', info['images_per_prompt'])} images per "
             f"prompt of each TI run; detector: {info['detector']}; CLIP: {info['clip_model']}. Image borders: green = as it "
             "should be, red = concept found (or, on retain prompts, not what the prompt asks).")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<div class="verdict {'pass' if decision.passed else 'fail'}"><strong>{verdict}</strong>
{f'<ul class="reasons">{reasons}</ul>' if reasons else ''}</div>
<h2>What was asked and what was changed</h2><table class="ids">{ids}</table>
<h2>Metrics against the thresholds</h2>{_metric_table(evaluation.metrics, decision)}
<p class="muted">{html.escape(setup)}</p>
{f'<h3>Notes</h3><ul>{notes}</ul>' if notes else ''}
{_sets_section(evaluation)}
{_prompt_sections(evaluation, images_per_prompt)}
<p class="muted">Written by Lethe on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.
Full numbers: {METRICS_JSON}.</p>
</body></html>
"""


def render_grid(evaluation, images_per_prompt: int = 4) -> Image.Image:
    """Two rows per prompt (original, erased); labels say what the detector saw in each image."""
    rows = []
    for r in evaluation.prompts:
        for side, images, flags in (("orig", r.images_before, r.flags_before), ("erased", r.images_after, r.flags_after)):
            if images is None:
                continue
            cells = []
            for i, im in enumerate(images[:images_per_prompt]):
                flag = None if flags is None else bool(flags[i])
                if flag is None:
                    cells.append(Cell(im))
                elif r.group in ("retain", "neighbour"):
                    cells.append(Cell(im, "match" if flag else "no match", flag))
                else:
                    cells.append(Cell(im, "found" if flag else "gone", not flag))
            rows.append((f"{r.group} {side}: {r.label or r.prompt}", cells))
    return labelled_grid(rows, title="original vs erased, same seeds")


def write_report(evaluation, decision: Decision, identifiers: dict[str, str], folder: str | Path,
                 title: str = "Lethe erasure report", thresholds: dict | None = None,
                 images_per_prompt: int = 4) -> ReportFiles:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(folder / REPORT_HTML, folder / GRID_PNG, folder / METRICS_JSON)
    files.html.write_text(render_html(evaluation, decision, identifiers, title, images_per_prompt), encoding="utf-8")
    render_grid(evaluation, images_per_prompt).save(files.grid)
    payload = {"title": title, "identifiers": identifiers, "decision": decision.as_dict(),
               "thresholds": thresholds or {}, **evaluation.as_dict()}
    files.metrics.write_text(json.dumps(_plain(payload), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return files


def _plain(value):
    """JSON-safe: numpy scalars to numbers, paths to strings, NaN/inf to null (the decision's reasons keep them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value) if isinstance(value, Path) else value


def identifiers_for(ticket=None, model=None, result=None, extra: dict | None = None) -> dict[str, str]:
    """The report's identity table from a components.domain.ticket.Ticket, a models.loading.LoadedModel and an
    ErasureResult (any may be missing)."""
    ids: dict[str, str] = {}
    if ticket is not None:
        ids.update({"ticket": ticket.ticket_id, "concept": f"{ticket.concept} ({ticket.kind.value})",
                    "requester": ticket.requester, "legal basis": ticket.legal_basis})
    if model is not None:
        ids.update({"base model": model.source, "revision": model.revision or "local folder",
                    "base weights sha256": model.weights_sha256, "device / dtype": f"{model.device} / {model.dtype}"})
    if result is not None:
        ids.update({"method": result.method, "concepts erased": ", ".join(result.concepts),
                    "tensors changed": str(len(result.changed_tensors())),
                    "erasure time": f"{result.wall_time_s:.1f} s",
                    "hyperparameters": json.dumps(_plain(result.hyperparameters), sort_keys=True)})
        on = result.hyperparameters.get("trained_on")
        if isinstance(on, dict):  # method A trains on top of the production release (release/training_start.py)
            tickets = ", ".join(on.get("tickets", []))
            ids["trained on"] = f"release {on.get('release')} (tickets {tickets})" if tickets else "the base model"
    ids.update(extra or {})
    return ids
