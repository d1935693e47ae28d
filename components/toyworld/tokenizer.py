"""A CLIP BPE tokenizer built offline for the toy world's vocabulary.

The merges are learned with the ordinary BPE algorithm over the world's words, so replaying them
turns every known word into a single token; single characters stay in the vocabulary so any text
(including a textual-inversion placeholder) still tokenizes.
"""
from __future__ import annotations

import json
import string
from collections import Counter
from pathlib import Path

from .shapes import COLOUR_NAMES, SHAPES

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
WORDS: tuple[str, ...] = (
    "a", "an", "the", "of", "in", "photo", "picture", "image", "drawing", "painting", "style",
    "shape", "object", "logo", "art",
) + COLOUR_NAMES + SHAPES
MAX_LENGTH = 16


def _learn_merges(words: tuple[str, ...]) -> list[tuple[str, str]]:
    seqs = [list(w[:-1]) + [w[-1] + "</w>"] for w in words]
    merges: list[tuple[str, str]] = []
    while any(len(s) > 1 for s in seqs):
        pairs = Counter((s[i], s[i + 1]) for s in seqs for i in range(len(s) - 1))
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        merged = best[0] + best[1]
        for k, s in enumerate(seqs):
            out, i = [], 0
            while i < len(s):
                if i < len(s) - 1 and (s[i], s[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[k] = out
    return merges


def build_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    merges = _learn_merges(WORDS)
    chars = [c for c in string.printable if not c.isspace() and not c.isupper()]
    tokens = chars + [c + "</w>" for c in chars] + [a + b for a, b in merges]
    vocab: dict[str, int] = {}
    for t in tokens + [BOS, EOS]:
        vocab.setdefault(t, len(vocab))
    return vocab, merges


def write_vocab_files(folder: Path) -> tuple[Path, Path]:
    """Write CLIP-style vocab.json / merges.txt (the files CLIPTokenizer reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab_and_merges()
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, indent=0))
    merges_file.write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return vocab_file, merges_file


def build_tokenizer():
    """The toy world's CLIPTokenizer (max length 16, padded with the end-of-text token like SD 1.x)."""
    from transformers import CLIPTokenizer

    vocab, merges = build_vocab_and_merges()
    return CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        model_max_length=MAX_LENGTH,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
    )
