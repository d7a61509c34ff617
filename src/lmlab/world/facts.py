"""The world model: entities and the (consistent) facts about them.

Everything scales with one number, the count of countries C (see `countries_for_size`):
- C countries, each with one language and 4 cities (the first is its capital);
- 8·C people, each born in a city (and so a citizen of that city's country), with a profession and an instrument;
  about a third of them moved house (a temporal `lives_in` fact);
- each country has an outdated and a current leader, both its own citizens;
- C companies with a founder, a headquarters city and an outdated and a current CEO (all different people);
- 2·C animals (pets) with a species, a colour and a size (the size is used by the grammar section only).

Consistency rules the generator guarantees: capital_of(X) = c ⇒ located_in(c) = X; citizen_of(p) =
located_in(born_in(p)); a country's leaders are its citizens; nobody holds two roles (leader, founder, CEO).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lmlab.world import english, lexicon
from lmlab.world.names import NameGenerator
from lmlab.world.relations import RELATIONS, template_words

CITIES_PER_COUNTRY = 4
PEOPLE_PER_COUNTRY = 8
COMPANIES_PER_COUNTRY = 1
ANIMALS_PER_COUNTRY = 2
MOVED_FRACTION = 1 / 3

# Static facts per country: capital + language + 4 located_in + 8 people × 4 (born_in, citizen_of, works_as, plays)
# + founded_by + headquartered_in + 2 animals × 2 (species, colour).
STATIC_FACTS_PER_COUNTRY = 2 + CITIES_PER_COUNTRY + PEOPLE_PER_COUNTRY * 4 + COMPANIES_PER_COUNTRY * 2 \
    + ANIMALS_PER_COUNTRY * 2


@dataclass(frozen=True)
class Fact:
    """One (subject, relation, object) triple. Temporal facts also carry the outdated object and years."""
    id: str
    subject: str
    subject_kind: str
    relation: str
    object: str
    object_kind: str
    outdated_object: str | None = None
    outdated_year: int | None = None   # a year inside the outdated value's term ("In 2019, ... was ...")
    current_year: int | None = None    # the year the current value started ("Since 2023, ... has been ...")

    @property
    def temporal(self) -> bool:
        return self.outdated_object is not None


@dataclass
class World:
    entities: dict[str, list[str]]               # kind → names in generation order
    facts: list[Fact]
    animal_size: dict[str, str] = field(default_factory=dict)
    animal_colour: dict[str, str] = field(default_factory=dict)
    animal_species: dict[str, str] = field(default_factory=dict)

    def pool(self, kind: str) -> list[str]:
        """All possible objects of a kind: entity names, or the lexicon word list for word kinds."""
        if kind in self.entities:
            return self.entities[kind]
        return list({"profession": lexicon.PROFESSIONS, "instrument": lexicon.INSTRUMENTS,
                     "species": lexicon.SPECIES, "colour": lexicon.COLOURS}[kind])


def blocked_words() -> frozenset[str]:
    """Lowercase words names must avoid: the template vocabulary, the word lists, and common English words."""
    words = set(template_words()) | english.WORDS
    for group in (lexicon.PROFESSIONS, lexicon.INSTRUMENTS, lexicon.SPECIES, lexicon.COLOURS, lexicon.SIZES,
                  lexicon.THINGS, lexicon.PRODUCTS, lexicon.COMMON_WORDS):
        words.update(group)
    return frozenset(words)


def build_world(rng: random.Random, n_countries: int) -> World:
    """Draw all entities and facts for a world of `n_countries` countries from `rng` (deterministic)."""
    names = NameGenerator(rng, blocked_words())
    C = n_countries
    countries = [names.make("country") for _ in range(C)]
    languages = [names.make("language") for _ in range(C)]
    cities, city_country = [], {}
    for country in countries:
        for _ in range(CITIES_PER_COUNTRY):
            city = names.make("city")
            cities.append(city)
            city_country[city] = country
    people = [names.make("person") for _ in range(PEOPLE_PER_COUNTRY * C)]
    companies = [names.make("company") for _ in range(COMPANIES_PER_COUNTRY * C)]
    animals = [names.make("animal") for _ in range(ANIMALS_PER_COUNTRY * C)]

    # Birthplaces: the first two people of each country are born there (every country then has ≥ 2 citizens to
    # be its leaders); everybody else is born in a random city.
    born = {}
    for i, person in enumerate(people):
        if i < 2 * C:
            k = i // 2
            born[person] = cities[k * CITIES_PER_COUNTRY + rng.randrange(CITIES_PER_COUNTRY)]
        else:
            born[person] = rng.choice(cities)
    leaders = {country: (people[2 * k], people[2 * k + 1]) for k, country in enumerate(countries)}  # (old, new)
    others = people[2 * C:]
    rng.shuffle(others)
    founders, ceos = {}, {}
    for k, company in enumerate(companies):
        founders[company] = others[3 * k]
        ceos[company] = (others[3 * k + 1], others[3 * k + 2])

    raw: list[tuple] = []  # (subject, subject_kind, relation, object, object_kind, outdated, old_year, new_year)

    def add(s, sk, rel, o, ok, outdated=None):
        years = (None, None)
        if outdated is not None:
            years = (rng.randrange(2012, 2021), rng.randrange(2021, 2025))
        raw.append((s, sk, rel, o, ok, outdated) + years)

    for k, country in enumerate(countries):
        add(country, "country", "capital_of", cities[k * CITIES_PER_COUNTRY], "city")
        add(country, "country", "language_of", languages[k], "language")
    for city in cities:
        add(city, "city", "located_in", city_country[city], "country")
    for person in people:
        add(person, "person", "born_in", born[person], "city")
        add(person, "person", "citizen_of", city_country[born[person]], "country")
        add(person, "person", "works_as", rng.choice(lexicon.PROFESSIONS), "profession")
        add(person, "person", "plays", rng.choice(lexicon.INSTRUMENTS), "instrument")
    for company in companies:
        add(company, "company", "founded_by", founders[company], "person")
        add(company, "company", "headquartered_in", rng.choice(cities), "city")
    world = World(entities={"country": countries, "language": languages, "city": cities, "person": people,
                            "company": companies, "animal": animals}, facts=[])
    for animal in animals:
        world.animal_species[animal] = rng.choice(lexicon.SPECIES)
        world.animal_colour[animal] = rng.choice(lexicon.COLOURS)
        world.animal_size[animal] = rng.choice(lexicon.SIZES)
        add(animal, "animal", "species_of", world.animal_species[animal], "species")
        add(animal, "animal", "colour_of", world.animal_colour[animal], "colour")
    for country in countries:
        old, new = leaders[country]
        add(country, "country", "leader_of", new, "person", outdated=old)
    for company in companies:
        old, new = ceos[company]
        add(company, "company", "ceo_of", new, "person", outdated=old)
    for person in people:
        if rng.random() < MOVED_FRACTION:
            old = rng.choice(cities)
            new = _other(rng, cities, old)
            add(person, "person", "lives_in", new, "city", outdated=old)

    order = {r.name: i for i, r in enumerate(RELATIONS)}
    raw.sort(key=lambda t: order[t[2]])  # stable: within a relation, subjects stay in generation order
    world.facts = [Fact(f"F{i:06d}", *t) for i, t in enumerate(raw)]
    return world


def _other(rng: random.Random, items: list[str], not_this: str) -> str:
    """A random element of `items` different from `not_this` (rejection sampling; items has ≥ 2 elements)."""
    while True:
        x = rng.choice(items)
        if x != not_this:
            return x
