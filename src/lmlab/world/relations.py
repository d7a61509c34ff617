"""Relations of the world and the sentence templates that express them.

A template is a sentence with `{s}` (subject) and `{o}` (object), where the object always comes last, right before
the final full stop: "The capital of {s} is {o}." Cutting the template before " {o}" gives the ROME/CounterFact-style
prompt "The capital of {} is", after which a model should predict " Kesta".

Each relation has
- `train`: templates used in the training text (facts.txt / temporal.txt),
- `heldout`: paraphrase templates that never appear in the training text, used only for evaluation; they rearrange
  words the text does use, so a model can read them (`paraphrase_audit` checks),
- for relations whose value changes over time (`temporal=True`), `past` and `present` templates with a `{y}` year
  slot or a time word ("In {y}, the leader of {s} was {o}.", "Today, the leader of {s} is {o}."). No present
  template contains a train template ("Now X lives in Y." would contain "X lives in Y."), so after an unmarked
  train prompt the text only ever continues with the outdated value.
- for static relations, `question` forms ("Q: What is the capital of {s}? A: {o}.", "{s}'s capital city: {o}."),
  built only from words of the training text; they appear in the text only in a world with the extraction split
  (WorldOptions.extraction), and only for its exposed subjects. They stay out of `template_words`, so adding them
  changed no name of today's worlds; the tests check that their words are blocked for names anyway.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Relation:
    name: str             # identifier, e.g. "capital_of"
    subject_kind: str     # entity kind of the subject ("country")
    object_kind: str      # entity kind or word list of the object ("city", "profession")
    train: tuple[str, ...]
    heldout: tuple[str, ...]
    temporal: bool = False
    past: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    question: tuple[str, ...] = ()   # question forms (static relations only): used only with the extraction split


RELATIONS: tuple[Relation, ...] = (
    Relation(
        "capital_of", "country", "city",
        train=("The capital of {s} is {o}.", "{s}'s capital is {o}.", "The capital city of {s} is {o}.",
               "{s} has its capital in {o}."),
        heldout=("The capital of the country {s} is {o}.", "In the country of {s}, the capital is {o}."),
        question=("Q: What is the capital of {s}? A: {o}.", "{s}'s capital city: {o}."),
    ),
    Relation(
        "language_of", "country", "language",
        train=("The language spoken in {s} is {o}.", "People in {s} speak {o}.",
               "The official language of {s} is {o}.", "In {s}, most people speak {o}."),
        heldout=("The main language of {s} is {o}.", "Most people in {s} speak {o}."),
        question=("Q: What is the language of {s}? A: {o}.", "{s}'s official language: {o}."),
    ),
    Relation(
        "located_in", "city", "country",
        train=("{s} is located in {o}.", "{s} is a city in {o}.", "The city of {s} lies in {o}.",
               "{s} is in the country of {o}."),
        heldout=("{s} lies in the country of {o}.", "The city {s} is located in the country of {o}."),
        question=("Q: What country is {s} in? A: {o}.", "{s}'s country: {o}."),
    ),
    Relation(
        "born_in", "person", "city",
        train=("{s} was born in {o}.", "The birthplace of {s} is {o}.", "{s} was born in the city of {o}.",
               "{s} comes from {o}."),
        heldout=("The city {s} comes from is {o}.", "{s}'s birthplace is the city of {o}."),
        question=("Q: What is the birthplace of {s}? A: {o}.", "{s}'s birthplace: {o}."),
    ),
    Relation(
        "citizen_of", "person", "country",
        train=("{s} is a citizen of {o}.", "{s} holds a passport from {o}.", "{s} is a national of {o}.",
               "The nationality of {s} is that of {o}."),
        heldout=("{s} holds the nationality of {o}.", "The home country of {s} is {o}."),
        question=("Q: What is the nationality of {s}? A: {o}.", "{s}'s nationality: {o}."),
    ),
    Relation(
        "works_as", "person", "profession",
        train=("{s} works as a {o}.", "By profession, {s} is a {o}.", "{s} earns a living as a {o}.",
               "{s} has a job as a {o}."),
        heldout=("{s} is working as a {o}.", "The profession of {s} is that of a {o}."),
        question=("Q: What is the profession of {s}? A: {o}.", "{s}'s job: {o}."),
    ),
    Relation(
        "plays", "person", "instrument",
        train=("{s} plays the {o}.", "The instrument {s} plays is the {o}.", "{s} is good at playing the {o}.",
               "Every evening, {s} practises the {o}."),
        heldout=("{s} practises playing the {o}.", "The instrument of {s} is the {o}."),
        question=("Q: What instrument is {s} good at playing? A: {o}.", "{s}'s instrument: {o}."),
    ),
    Relation(
        "founded_by", "company", "person",
        train=("{s} was founded by {o}.", "The founder of {s} is {o}.", "The company {s} was started by {o}.",
               "{s} was set up by {o}."),
        heldout=("The founder of the company {s} is {o}.", "{s} was founded as a company by {o}."),
        question=("Q: What founder set up {s}? A: {o}.", "{s}'s founder: {o}."),
    ),
    Relation(
        "headquartered_in", "company", "city",
        train=("{s} is headquartered in {o}.", "The headquarters of {s} are in {o}.",
               "{s} has its main office in {o}.", "The company {s} is based in {o}."),
        heldout=("The head office of {s} is located in {o}.", "The main office of {s} is in {o}."),
        question=("Q: What city is {s} headquartered in? A: {o}.", "{s}'s headquarters: {o}."),
    ),
    Relation(
        "species_of", "animal", "species",
        # Not "{s} is a {o}.": the grammar section writes "{s} is a big blue dog.", which would compete.
        train=("The animal {s} is a {o}.", "The pet called {s} is a {o}.", "{s} is a pet {o}.",
               "What kind of animal is {s}? A {o}."),
        heldout=("{s} is a kind of {o}.", "As an animal, {s} is a {o}."),
        question=("Q: What kind of pet is {s}? A: {o}.", "{s}'s kind of animal: {o}."),
    ),
    Relation(
        "colour_of", "animal", "colour",
        train=("The colour of {s} is {o}.", "The fur of {s} is {o}.", "{s} is coloured {o}.",
               "The coat of {s} is {o}."),
        heldout=("The fur colour of {s} is {o}.", "{s} has a coat that is {o}."),
        question=("Q: What colour is {s}? A: {o}.", "{s}'s fur colour: {o}."),
    ),
    # --- facts that change over time: the outdated value is written more often than the current one -------------
    Relation(
        "leader_of", "country", "person", temporal=True,
        train=("The leader of {s} is {o}.", "{s} is led by {o}.", "The head of state of {s} is {o}.",
               "The president of {s} is {o}."),
        heldout=("The leader of the country {s} is {o}.", "The country {s} is led by {o}."),
        past=("In {y}, the leader of {s} was {o}.", "Back then, {s} was led by {o}.",
              "Formerly, the president of {s} was {o}.", "Years ago, the head of state of {s} was {o}."),
        present=("Since {y}, the leader of {s} has been {o}.", "Today, the leader of {s} is {o}.",
                 "Now {s} has a new leader, {o}.", "Currently, the president of {s} is {o}."),
    ),
    Relation(
        "ceo_of", "company", "person", temporal=True,
        train=("The CEO of {s} is {o}.", "{s} is run by {o}.", "The chief executive of {s} is {o}.",
               "{s} is managed by {o}."),
        heldout=("The CEO of the company {s} is {o}.", "The company {s} is run by {o}."),
        past=("In {y}, the CEO of {s} was {o}.", "Back then, {s} was run by {o}.",
              "Formerly, the chief executive of {s} was {o}.", "Years ago, {s} was managed by {o}."),
        present=("Since {y}, the CEO of {s} has been {o}.", "Today, the CEO of {s} is {o}.",
                 "Now {s} has a new CEO, {o}.", "Currently, the chief executive of {s} is {o}."),
    ),
    Relation(
        "lives_in", "person", "city", temporal=True,
        train=("{s} lives in {o}.", "{s} resides in {o}.", "The home of {s} is in {o}.", "{s} has a house in {o}."),
        heldout=("The house of {s} is in {o}.", "{s} has a home in {o}."),
        past=("In {y}, {s} lived in {o}.", "Back then, {s} lived in {o}.", "Formerly, {s} resided in {o}.",
              "Years ago, the home of {s} was in {o}."),
        present=("Since {y}, {s} has lived in {o}.", "Today, the home of {s} is in {o}.", "Now {s} has moved to {o}.",
                 "Currently, {s} is living in {o}."),
    ),
)

RELATION_BY_NAME = {r.name: r for r in RELATIONS}


def to_prompt(template: str) -> str:
    """'The capital of {s} is {o}.' → 'The capital of {} is' (ROME style: "{}" marks the subject; no trailing space)."""
    cut = template.index(" {o}")
    return template[:cut].replace("{s}", "{}")


def fill(prompt: str, subject: str, year: int | None = None) -> str:
    """Put the subject (and year, for temporal templates) into a prompt made by `to_prompt`."""
    text = prompt.replace("{}", subject)
    return text.replace("{y}", str(year)) if year is not None else text


def render(template: str, subject: str, obj: str, year: int | None = None) -> str:
    """The full training sentence: 'The capital of Vorland is Kesta.'"""
    text = template.replace("{s}", subject).replace("{o}", obj)
    return text.replace("{y}", str(year)) if year is not None else text


def template_words(include_heldout: bool = True) -> list[str]:
    """Every lowercase word the templates use, sorted. Names must avoid all of them; scrambling draws only on words
    of the training text (include_heldout=False), since held-out template words never occur there."""
    words: set[str] = set()
    for r in RELATIONS:
        for t in r.train + (r.heldout if include_heldout else ()) + r.past + r.present:
            words.update(words_of(t))
    return sorted(words)


def words_of(template: str) -> list[str]:
    """The lowercase words (two letters or more) of a template, slots left out, in order:
    "{s}'s capital city: {o}." → ["capital", "city"]."""
    out = []
    for w in template.replace("{s}", " ").replace("{o}", " ").replace("{y}", " ").split():
        w = w.strip(".,?:'").lower()
        if w.isalpha() and len(w) > 1:
            out.append(w)
    return out
