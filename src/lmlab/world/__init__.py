"""The seeded synthetic world: entities, relations, templates, facts, training text and evaluation tasks.

    from lmlab.world import generate_world, load_facts
    summary = generate_world("world", seed=0, size="5MB")

See docs/world.md for the grammar of the generator and the layout of a world directory.
"""

from lmlab.world.generate import countries_for_size, format_world_summary, generate_world
from lmlab.world.instructions import instruction_set
from lmlab.world.io import (is_world, list_tasks, load_edits, load_facts, load_task, load_world_info,
                            sample_prompts)
from lmlab.world.options import WorldOptions
from lmlab.world.scramble import is_valid_scramble
from lmlab.world.vocabulary import paraphrase_audit

__all__ = ["generate_world", "format_world_summary", "countries_for_size", "is_world", "load_world_info", "load_facts", "load_edits",
           "list_tasks", "load_task", "sample_prompts", "is_valid_scramble",
           "instruction_set", "WorldOptions", "paraphrase_audit"]
