"""Which prompts an evaluation draws, and which the training may use: built per ticket, never one fixed list.

- forget: every way of asking for the concept: its kind's templates (with its name and aliases), the
  config's attribute templates, every vocabulary caption that names it, and the ticket's own prompts;
- retain: a corpus per base model (a captions file and/or the vocabulary's captions) minus every prompt
  naming the concept, an alias or a forget prompt; split by a hash of each prompt into a training part
  and a held-out part that only evaluation sees; with `split: by_content`, within each content group (the
  vocabulary's captions made from the same slot values), so that training keeps a caption of every thing drawn.
  Named retain prompts (config, ticket) are trained on and evaluated; they are dropped, with a record, when
  they name the concept;
- neighbours: things close to the concept (the vocabulary's canonical captions with the concept swapped
  for another value of its slot; the ticket's `neighbours`), gated on their own;
- paraphrases: the config's table for this concept plus the ticket's, for the recovery attack.
"""
from __future__ import annotations

import hashlib
import itertools
import string
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..erasure.request import Concept, ErasureRequest
from ..domain.prompt_templates import templates_for
from ..domain.prompt_terms import first_named, names, same_prompt


@dataclass(frozen=True)
class Removed:
    prompt: str
    source: str  # config retain_prompts | ticket retain_prompts | config paraphrases | ...
    names: str  # the concept, alias or forget prompt it named


@dataclass
class EvaluationSets:
    forget: dict[str, list[Concept]]  # prompt -> the concepts it asks for
    retain: list[str]  # evaluated: the held-out corpus part, then the named retain prompts
    training_retain: list[str]  # what training may keep fixed: the corpus' training part + named retain prompts
    neighbours: list[str]
    paraphrases: list[str]
    removed: list[Removed] = field(default_factory=list)
    corpus: dict = field(default_factory=dict)  # sizes: total, naming the concept, held out, training
    substitutes: list[str] = field(default_factory=list)  # the other values of the concepts' vocabulary slots

    def as_dict(self) -> dict:
        return {"forget": list(self.forget), "retain": self.retain, "training_retain": self.training_retain,
                "neighbours": self.neighbours, "paraphrases": self.paraphrases, "substitutes": self.substitutes,
                "removed": [asdict(r) for r in self.removed], "corpus": self.corpus}


def kind_templates(evaluation, kind: str) -> list[str]:
    """The forget templates of a concept kind, "{concept}" style: the config's, else the TI templates."""
    if kind in evaluation.forget_templates:
        return list(evaluation.forget_templates[kind])
    return [t.replace("{}", "{concept}") for t in templates_for(kind)]


def _slots(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def vocabulary_captions(vocabulary, template: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """Every caption of the vocabulary (or of one template), with the slot values that made it."""
    out = []
    for t in [template] if template else vocabulary.captions:
        used = list(dict.fromkeys(_slots(t)))
        for values in itertools.product(*(vocabulary.slots[s] for s in used)):
            filling = dict(zip(used, values))
            out.append((t.format(**filling), filling))
    return out


def _concept_slots(vocabulary, terms: list[str]) -> list[str]:
    """The vocabulary slots that hold one of the concept's terms as a value ("colour" for "yellow")."""
    return [slot for slot, values in vocabulary.slots.items()
            if any(same_prompt(v, t) for v in values for t in terms)]


def neighbour_captions(vocabulary, terms: list[str]) -> list[str]:
    """The canonical captions in which a concept's slot holds another of its values."""
    out = []
    for slot in _concept_slots(vocabulary, terms):
        for caption, filling in vocabulary_captions(vocabulary, vocabulary.captions[0]):
            if slot in filling and first_named(caption, terms) is None:
                out.append(caption)
    return list(dict.fromkeys(out))


def slot_substitutes(vocabulary, terms: list[str]) -> list[str]:
    """The other values of every slot that holds one of the concept's terms ("red", "green", "blue" for "yellow")."""
    return list(dict.fromkeys(v for slot in _concept_slots(vocabulary, terms) for v in vocabulary.slots[slot]
                              if first_named(v, terms) is None))


def read_corpus_file(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def heldout_score(prompt: str) -> float:
    """A prompt's place in [0, 1) by its hash: the split is the same for every ticket and every run."""
    digest = hashlib.sha256(" ".join(prompt.lower().split()).encode("utf-8")).hexdigest()
    return int(digest[:12], 16) / 16 ** 12


def heldout_part(groups: dict[str, tuple], fraction: float) -> set[str]:
    """The held-out prompts of a corpus whose prompts are grouped by content (prompt -> its group's key). A group of
    one is held out when its hash score is under `fraction`; a larger group holds out `fraction` of its prompts
    (at least one, never all), those with the lowest scores. Why: a split by prompt alone held out every circle
    caption but one on the toy world, so method A's retain term never saw a green or yellow circle, and erasing
    triangle wiped out "a green circle" (BENCHMARKS.md, seventh session)."""
    members: dict[tuple, list[str]] = {}
    for prompt, key in groups.items():
        members.setdefault(key, []).append(prompt)
    out = set()
    for prompts in members.values():
        ranked = sorted(prompts, key=heldout_score)
        if len(ranked) == 1:
            out.update(p for p in ranked if heldout_score(p) < fraction)
        else:
            out.update(ranked[:min(max(round(fraction * len(ranked)), 1), len(ranked) - 1)])
    return out


def _conflict(prompt: str, terms: list[str], forget: list[str]) -> str | None:
    """What a prompt that must be kept names: the concept or an alias, or one of the forget prompts."""
    return first_named(prompt, terms) or next((f for f in forget if same_prompt(prompt, f) or names(prompt, f)), None)


def evaluation_sets(request: ErasureRequest, evaluation) -> EvaluationSets:
    """request: the ticket's concepts and prompts; evaluation: run_config.Evaluation."""
    terms = [t for c in request.concepts for t in c.terms]
    vocab = evaluation.vocabulary

    forget: dict[str, list[Concept]] = {}
    for concept in request.concepts:
        templates = [*kind_templates(evaluation, concept.kind), *evaluation.attribute_templates]
        for template in templates:
            for term in concept.terms:
                forget.setdefault(template.format(concept=term), []).append(concept)
        for caption, _ in vocabulary_captions(vocab) if vocab else []:
            if first_named(caption, concept.terms):
                forget.setdefault(caption, []).append(concept)
    for prompt in request.forget_prompts:
        forget.setdefault(prompt, list(request.concepts))
    forget = {p: list(dict.fromkeys(cs)) for p, cs in forget.items()}
    forget_prompts = list(forget)

    removed: list[Removed] = []

    def keep(prompts, source: str) -> list[str]:
        kept = []
        for p in dict.fromkeys(prompts):
            hit = _conflict(p, terms, forget_prompts)
            if hit is None:
                kept.append(p)
            elif source:
                removed.append(Removed(p, source, hit))
        return kept

    by_content = evaluation.retain_corpus.split == "by_content"
    groups = {c: tuple(sorted(filling.items())) if by_content else (("caption", c),)
              for c, filling in (vocabulary_captions(vocab) if vocab else [])}
    for line in read_corpus_file(evaluation.retain_corpus.file) if evaluation.retain_corpus.file else []:
        groups.setdefault(line, (("caption", line),))
    corpus_all = list(groups)
    fraction = evaluation.retain_corpus.heldout_fraction
    # split before removal, so that a prompt held out for one ticket is held out for every ticket
    heldout_all = heldout_part(groups, fraction)
    corpus = keep(corpus_all, "")  # the corpus naming the concept is expected: counted, not listed
    heldout = sorted((p for p in corpus if p in heldout_all), key=heldout_score)
    training = [p for p in corpus if p not in heldout_all]
    if evaluation.retain_corpus.max_heldout:
        heldout = heldout[:evaluation.retain_corpus.max_heldout]
    chosen = set(heldout)
    heldout = [p for p in corpus if p in chosen]  # corpus order, for a readable report
    named = [*keep(evaluation.retain_prompts, "config retain_prompts"),
             *keep(request.retain_prompts, "ticket retain_prompts")]
    named = list(dict.fromkeys(named))

    neighbours = keep([*(neighbour_captions(vocab, terms) if vocab else [])], "")
    neighbours = list(dict.fromkeys([*neighbours, *keep(request.neighbours, "ticket neighbours")]))
    table = [p for c in request.concepts for t in c.terms for p in evaluation.paraphrases.get(t, [])]
    paraphrases = [*keep(table, "config paraphrases"), *keep(request.paraphrases, "ticket paraphrases")]

    return EvaluationSets(
        forget=forget, retain=list(dict.fromkeys([*heldout, *named])),
        training_retain=list(dict.fromkeys([*training, *named])), neighbours=neighbours,
        paraphrases=list(dict.fromkeys(paraphrases)), removed=removed,
        corpus={"total": len(corpus_all), "naming_the_concept": len(corpus_all) - len(corpus),
                "heldout": len(heldout), "training": len(training), "heldout_fraction": fraction,
                "split": evaluation.retain_corpus.split},
        substitutes=slot_substitutes(vocab, terms) if vocab else [])


def with_prompt_sets(request: ErasureRequest, evaluation) -> ErasureRequest:
    """The request with the sets' forget prompts, training retain prompts and slot substitutes for the erasure
    method."""
    sets = evaluation_sets(request, evaluation)
    return replace(request, training_forget=[p for p in sets.forget if p not in request.forget_prompts],
                   training_retain=sets.training_retain, substitutes=sets.substitutes)
