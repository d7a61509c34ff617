"""`WorldOptions`: how the world's training text states the static facts (augmentation) and whether it holds an
extraction split. The defaults give exactly the world `generate_world` has always written.

The experiment these serve (docs/experiments/knowledge-augmentation.md): a model that read each fact in one fixed
sentence may only have memorised sentences; one that read it in several forms and orders may have stored the fact
so that a question it never saw asked about that subject still reaches it (Allen-Zhu & Li's knowledge extraction).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from lmlab.errors import LmlabError
from lmlab.world.relations import RELATIONS

MAX_FORMS = min(len(r.train) for r in RELATIONS if not r.temporal)  # statement (train) templates per relation
ORDERS = ("shuffled", "fixed")


@dataclass(frozen=True)
class WorldOptions:
    """Choices about how facts.txt states each static fact. Temporal facts (temporal.txt) are not affected."""

    forms: int = MAX_FORMS        # distinct statement (train) templates per fact: a seeded sample of this many of the
                                  # relation's train templates, each mention picks one of them (1 = each fact is
                                  # always written the same way: "no augmentation"; MAX_FORMS = all, as always)
    order: str = "shuffled"       # facts within a subject's paragraph: "shuffled" anew each mention, or "fixed" (the
                                  # order of facts.jsonl, the same in every paragraph about that subject)
    extraction: bool = False      # write the extraction split: question forms ("Q: What is the capital of X? A:")
                                  # appear in the text only for the exposed subjects; task facts_extract asks them
                                  # about the held-out subjects, which the text states only in statement forms
    exposed_fraction: float = 0.5  # share of each subject kind's subjects that are exposed (with extraction only)
    statements: int = 1           # statements of each fact per round (per paragraph about its subject), each in a
                                  # different one of its forms (at most `forms`). The byte budget is the same, so the
                                  # text holds about as many statements per fact either way; what changes is that one
                                  # context shows the fact in several phrasings side by side
    name_variants: bool = False   # facts.txt names each static fact's subject by its own name or a variant of it
                                  # ("Kavelor" / "Kavelor Dransk", "Vorland" / "the Republic of Vorland"), a random
                                  # one per statement; questions, tasks and the other sections keep the plain name

    def __post_init__(self) -> None:
        if not isinstance(self.forms, int) or isinstance(self.forms, bool) or not 1 <= self.forms <= MAX_FORMS:
            raise LmlabError(f"world options: forms must be an integer from 1 to {MAX_FORMS} (statement templates "
                             f"per fact), got {self.forms!r}")
        if self.order not in ORDERS:
            raise LmlabError(f"world options: order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if not isinstance(self.extraction, bool):
            raise LmlabError(f"world options: extraction must be true or false, got {self.extraction!r}")
        fraction = self.exposed_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise LmlabError(f"world options: exposed_fraction must be a number strictly between 0 and 1 "
                             f"(e.g. 0.5), got {fraction!r}")

        if (not isinstance(self.statements, int) or isinstance(self.statements, bool)
                or not 1 <= self.statements <= self.forms):
            raise LmlabError(f"world options: statements must be an integer from 1 to forms ({self.forms}): each "
                             f"statement of a fact in one round uses a different form; got {self.statements!r}")
        if not isinstance(self.name_variants, bool):
            raise LmlabError(f"world options: name_variants must be true or false, got {self.name_variants!r}")

    def non_default(self) -> dict:
        """The fields that differ from the defaults, as world.json records them ({} for today's world, so its
        world.json stays byte-identical)."""
        default = WorldOptions()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}
