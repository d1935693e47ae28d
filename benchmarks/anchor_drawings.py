"""What the original toy model draws for method A's anchors (a forget prompt without the concept's words): the
share of its drawings of each anchor that show each concept, by the toy detector. An anchor that is itself drawn as
the concept ("a blue" as a triangle) gives an anchored target that pushes little away from it.

    python -m benchmarks.anchor_drawings [--images 16] [--seed 555]
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--seed", type=int, default=555)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "toy.yaml")
    args = parser.parse_args()

    from components.config.run_config import load_run_config
    from components.evaluation.generation import generate
    from components.models.loading import load_pipeline
    from components.toyworld.detector import ConceptDetector
    from components.toyworld.shapes import COLOURS, SHAPES

    config = load_run_config(args.config)
    pipe = load_pipeline(config.base_model.source, device="cpu").pipeline
    detector = ConceptDetector.from_pretrained(config.evaluation.detector.path)
    anchors = [*(f"a {c}" for c in COLOURS), *(f"a {s}" for s in SHAPES), "a photo of a", "a", ""]
    drawn = generate(pipe, anchors, args.images, config.sampling, seed=args.seed)
    for anchor in anchors:
        found = detector.detect(drawn[anchor])
        print(json.dumps({"anchor": anchor, "images": len(found),
                          "shapes": dict(collections.Counter(x.shape for x in found)),
                          "colours": dict(collections.Counter(x.colour for x in found))}))


if __name__ == "__main__":
    main()
