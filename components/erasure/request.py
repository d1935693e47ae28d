"""What an erasure method is asked to do: which concepts, from which images, keeping which prompts."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .concept import Concept
from ..domain.prompt_templates import fill, templates_for

if TYPE_CHECKING:
    from ..domain.ticket import LoadedTicket, Ticket
    from .textual_inversion import LearnedToken


@dataclass
class ErasureRequest:
    concepts: list[Concept]
    images: list[Path] = field(default_factory=list)  # the few-shot images (methods A and B, and TI)
    forget_prompts: list[str] = field(default_factory=list)  # extra prompts that name the concept
    retain_prompts: list[str] = field(default_factory=list)  # named prompts whose outputs must not change
    seed: int = 0
    learned_token: "LearnedToken | None" = None  # from the TI step; method A learns one if absent
    paraphrases: list[str] = field(default_factory=list)  # describe the concept without its name (the attack)
    neighbours: list[str] = field(default_factory=list)  # things close to the concept that must survive
    # From the evaluation's prompt sets (prompt_sets.evaluation_sets): every other way of asking for the
    # concept, and the retain corpus' training part, so that training erases and protects what is measured.
    training_forget: list[str] = field(default_factory=list)
    training_retain: list[str] = field(default_factory=list)
    # The other values of the concept's vocabulary slot ("red", "green", "blue" for "yellow"): what a prompt may ask
    # for in the concept's place (method A's substitute_anchors).
    substitutes: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.concepts:
            raise ValueError("an erasure request needs at least one concept")

    @property
    def concept(self) -> Concept:
        """The single concept of a one-concept method (A, B)."""
        if len(self.concepts) != 1:
            names = ", ".join(c.name for c in self.concepts)
            raise ValueError(f"this method erases one concept per request, got {len(self.concepts)} ({names}); "
                             "use method 'closed_form' to erase several at once")
        return self.concepts[0]

    def concept_prompts(self) -> list[str]:
        """Every concept's kind templates filled with its name, then the extra forget prompts (deduplicated)."""
        filled = [p for c in self.concepts for p in fill(templates_for(c.kind), c.name)]
        return list(dict.fromkeys([*filled, *self.forget_prompts, *self.training_forget]))

    def kept_prompts(self) -> list[str]:
        """The retain prompts plus the empty prompt: classifier-free guidance's unconditional branch reads
        it for every image, so every method keeps it fixed (UCE's own script preserves '' too)."""
        return list(dict.fromkeys([*self.retain_prompts, *self.training_retain, ""]))

    @classmethod
    def from_ticket(cls, loaded: "LoadedTicket", seed: int = 0,
                    learned_token: "LearnedToken | None" = None) -> "ErasureRequest":
        return cls.from_ticket_fields(loaded.ticket, list(loaded.image_paths), seed, learned_token)

    @classmethod
    def from_ticket_fields(cls, t: "Ticket", images: list[Path] | None = None, seed: int = 0,
                           learned_token: "LearnedToken | None" = None) -> "ErasureRequest":
        """From the ticket's fields alone (e.g. a registered ticket whose images are not at hand: a release
        verifies an earlier concept's forget and retain sets without them)."""
        return cls(concepts=[Concept(t.concept, t.kind.value, tuple(t.aliases))], images=list(images or []),
                   forget_prompts=list(t.forget_prompts), retain_prompts=list(t.retain_prompts),
                   paraphrases=list(t.paraphrases), neighbours=list(t.neighbours),
                   seed=seed, learned_token=learned_token)
