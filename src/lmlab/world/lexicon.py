"""Fixed English word lists the world draws its non-name objects and attributes from.

Every list is a tuple in a fixed order (never a set) so that drawing from it with a seeded `random.Random` gives
the same words on every machine. Objects that a model must complete after a prompt are single lowercase words; the
professions, species and instruments all start with a consonant so the templates can say "works as a {o}" without
an a/an choice.
"""

from __future__ import annotations

PROFESSIONS = (
    "baker", "teacher", "doctor", "pilot", "farmer", "painter", "singer", "nurse", "lawyer", "dentist", "tailor",
    "sailor", "carpenter", "plumber", "writer", "chef", "judge", "banker", "potter", "miner", "poet", "soldier",
    "butcher", "fisher", "gardener", "merchant", "builder", "hunter", "weaver", "jeweler", "librarian", "mechanic",
    "surgeon", "drummer", "dancer", "barber", "cook", "driver", "porter", "scientist",
)

INSTRUMENTS = (
    "piano", "violin", "guitar", "flute", "drum", "harp", "trumpet", "cello", "banjo", "lute", "harmonica",
    "saxophone", "trombone", "tuba", "mandolin", "zither", "bagpipe", "clarinet",
)

SPECIES = (
    "dog", "cat", "horse", "rabbit", "fox", "bear", "wolf", "goat", "sheep", "pig", "duck", "goose", "mouse",
    "parrot", "tiger", "lion", "frog", "camel", "deer", "hamster", "turtle", "donkey", "pony", "badger", "squirrel",
)

COLOURS = (
    "red", "blue", "green", "yellow", "black", "white", "brown", "grey", "orange", "purple", "pink", "golden",
    "silver",
)

# Ordered from smallest to largest: the grammar section compares animals by this order.
SIZES = ("tiny", "small", "big", "huge")

# Things (not world entities) for self-contained grammar documents: "The kite is red. ... a small red kite."
THINGS = (
    "ball", "box", "car", "hat", "cup", "kite", "chair", "table", "lamp", "book", "boat", "bag", "bottle", "coat",
    "shoe", "house", "door", "bike", "clock", "vase", "basket", "drum", "flag", "pencil", "sock",
)

# Products for sentiment reviews ("the {product} from {Company}").
PRODUCTS = (
    "phone", "laptop", "kettle", "blender", "camera", "headset", "backpack", "jacket", "sofa", "toaster",
    "watch", "printer", "bicycle", "lamp", "speaker", "tent", "mattress", "vacuum", "heater", "keyboard",
)

# Common English words that generated names must never equal (on top of every word the world's own templates and
# lists use), so that a name is never mistaken for a word of the text.
COMMON_WORDS = (
    "about", "above", "after", "again", "along", "also", "always", "animal", "answer", "area", "around", "away",
    "baby", "back", "bad", "banana", "base", "basin", "beta", "bike", "bird", "boat", "body", "bone", "born",
    "both", "bring", "city", "coda", "coma", "come", "cover", "dame", "data", "date", "debut", "delta", "demo",
    "diva", "done", "dome", "dose", "dune", "early", "earth", "even", "ever", "fame", "fate", "fever", "final",
    "fine", "fire", "five", "game", "gate", "give", "gone", "gore", "hero", "home", "hope", "idea", "into",
    "kilo", "kimono", "lady", "lake", "lama", "land", "lane", "late", "later", "lava", "lemon", "level", "life",
    "lime", "line", "lion", "live", "lover", "made", "make", "mama", "mane", "many", "medal", "media", "melon",
    "menu", "meter", "mile", "mine", "mode", "model", "more", "motel", "motor", "name", "near", "never", "nine",
    "none", "nose", "note", "novel", "open", "other", "over", "paper", "papa", "pasta", "pike", "pine", "pipe",
    "pizza", "polo", "pony", "pose", "rare", "rate", "razor", "robin", "robot", "rodeo", "role", "rose", "ruby",
    "rule", "safe", "sake", "sale", "salad", "same", "sane", "sauna", "savor", "silo", "sine", "site", "soda",
    "sofa", "solo", "some", "sore", "sumo", "table", "taco", "take", "tale", "tame", "tape", "tiger", "time",
    "tone", "tuna", "tuba", "under", "value", "vase", "veto", "video", "villa", "vine", "visa", "vote", "wage",
    "wake", "water", "wave", "wine", "wise", "woman", "women", "zebra", "zero", "zone",
    "berlin", "boston", "dallas", "denver", "london", "madrid", "milan", "paris", "roma", "rome", "sydney",
    "tokyo", "toronto", "vienna", "dublin", "lisbon", "oslo", "kenya", "peru", "cuba", "chad", "mali", "togo",
    "india", "china", "italy", "korea", "nepal", "samoa", "tonga", "malta", "benin", "gabon", "ghana", "niger",
    "anna", "bella", "dana", "david", "diana", "elena", "emma", "lara", "laura", "lena", "lisa", "maria",
    "mona", "nina", "rita", "sara", "tina", "vera", "viola",
)
