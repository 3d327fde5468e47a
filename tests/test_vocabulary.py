"""The synth vocabulary and the text-prompt parser."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.errors import PromptError
from cadenza.runtime.backends.synth.style import (
    DIMENSIONS,
    INSTRUMENT_FAMILIES,
    NEUTRAL,
    PATTERNS,
    STYLE_DIM,
    StyleView,
)
from cadenza.runtime.backends.synth.vocabulary import (
    CATEGORIES,
    GENRES,
    INSTRUMENTS,
    MODIFIERS,
    MOODS,
    TEXTURES,
    VOCABULARY,
    ParsedPrompt,
    known_words,
    parse_prompt,
)

PATTERN_DIMS = tuple(f"pattern_{p}" for p in PATTERNS)


def view(text: str) -> StyleView:
    return StyleView(parse_prompt(text).vector)


# --------------------------------------------------------------------------- the vocabulary itself


def test_vocabulary_size_and_categories() -> None:
    assert len(VOCABULARY) >= 90
    assert len(GENRES) >= 30
    assert len(INSTRUMENTS) >= 25
    assert len(MOODS) >= 25
    assert len(TEXTURES) >= 10
    categories = list(CATEGORIES.values())
    assert categories[:1] == [GENRES] and MODIFIERS in categories
    everything = [name for category in categories for name in category]
    assert len(everything) == len(set(everything)), "an entry sits in two categories"
    assert set(everything) == set(VOCABULARY)


@pytest.mark.parametrize(
    ("category", "required"),
    [
        (
            GENRES,
            "techno house ambient lofi lo-fi trap orchestral cinematic chiptune 8-bit jazz "
            "jungle dubstep synthwave retrowave disco funk rock metal pop trance breakbeat downtempo "
            "chillout drone classical soundtrack edm",
        ),
        (
            INSTRUMENTS,
            "piano rhodes organ strings violin cello pads choir bass 808 bassline drums percussion kick "
            "guitar harp arpeggio arp plucks bells marimba flute brass",
        ),
        (
            MOODS,
            "dark calm tense epic dreamy happy sad melancholic aggressive peaceful mysterious uplifting "
            "ominous heroic romantic playful eerie triumphant relaxed energetic chill intense",
        ),
        (
            TEXTURES,
            "vinyl crackle noise rain wind distorted gritty lush warm bright airy reverb spacious "
            "minimal dense fast slow",
        ),
    ],
)
def test_required_single_words_are_in_their_category(category: tuple[str, ...], required: str) -> None:
    missing = [word for word in required.split() if word not in category]
    assert not missing


def test_required_phrases() -> None:
    for phrase in ("deep house", "hip hop", "lo-fi hip hop", "drum and bass", "trip hop", "neo soul", "bossa nova"):
        assert phrase in GENRES
    for phrase in ("solo piano", "electric piano", "string quartet", "synth pad", "sub bass",
                   "drum machine", "hi hats", "acoustic guitar", "lead synth"):  # fmt: skip
        assert phrase in INSTRUMENTS
    for phrase in ("solo", "no drums", "without drums", "no bass"):
        assert phrase in MODIFIERS


def test_entries_are_partial_points_in_range() -> None:
    for name, point in VOCABULARY.items():
        assert name == name.lower().strip()
        assert point, name
        assert set(point) <= set(DIMENSIONS), name
        for dim, value in point.items():
            low, high = (40.0, 240.0) if dim == "tempo" else (0.0, 1.0)
            assert low <= value <= high, (name, dim, value)
    # partial: nothing but the modifiers and solo phrases speaks about everything
    assert all(len(VOCABULARY[m]) < STYLE_DIM for m in MOODS)


def test_genres_set_tempo_energy_and_one_pattern() -> None:
    for name in GENRES:
        point = VOCABULARY[name]
        assert "tempo" in point and "energy" in point, name
        given = [d for d in PATTERN_DIMS if d in point]
        if given:  # a genre that speaks about patterns names its own and rules out the others
            assert sorted(given) == sorted(PATTERN_DIMS), name
            assert sorted(point[d] for d in PATTERN_DIMS) == [0.0] * (len(PATTERNS) - 1) + [1.0], name


def test_typical_genre_tempos() -> None:
    expected = {"techno": 130, "house": 124, "drum and bass": 174, "lofi": 80, "ambient": 70,
                "trap": 140, "dubstep": 140, "synthwave": 100, "chiptune": 150, "orchestral": 90}  # fmt: skip
    for genre, bpm in expected.items():
        assert VOCABULARY[genre]["tempo"] == bpm
    assert VOCABULARY["jazz"]["swing"] >= 0.5
    assert VOCABULARY["ambient"]["drums"] == 0.0


def test_moods_leave_instruments_alone() -> None:
    for name in MOODS:
        assert not set(VOCABULARY[name]) & set(INSTRUMENT_FAMILIES), name


def test_known_words_sorted_and_complete() -> None:
    words = known_words()
    assert words == sorted(words)
    assert set(words) == set(VOCABULARY)


@pytest.mark.parametrize("name", sorted(VOCABULARY))
def test_every_entry_parses_to_itself(name: str) -> None:
    assert parse_prompt(name).matched == (name,)


# --------------------------------------------------------------------------- parsing


def test_result_shape_and_immutability() -> None:
    parsed = parse_prompt("dark techno")
    assert isinstance(parsed, ParsedPrompt)
    assert parsed.vector.shape == (STYLE_DIM,)
    assert parsed.matched == ("dark", "techno")
    assert parsed.unknown == ()
    with pytest.raises(ValueError):
        parsed.vector[0] = 1.0


def test_case_insensitive() -> None:
    a = parse_prompt("dark techno")
    b = parse_prompt("DARK Techno")
    assert a.matched == b.matched
    np.testing.assert_array_equal(a.vector, b.vector)


def test_punctuation_separates_words() -> None:
    base = parse_prompt("dark techno strings").vector
    for text in ("dark, techno. strings", "dark+techno & strings", "(dark) techno; strings!"):
        np.testing.assert_array_equal(parse_prompt(text).vector, base)


@pytest.mark.parametrize("spelling", ["lo-fi", "lofi", "lo fi", "LO-FI", "Lo Fi"])
def test_hyphens_and_spaces_inside_phrases(spelling: str) -> None:
    np.testing.assert_array_equal(parse_prompt(spelling).vector, parse_prompt("lofi").vector)


def test_joined_and_plural_spellings() -> None:
    assert parse_prompt("hip-hop").matched == ("hip hop",)
    assert parse_prompt("hiphop").matched == ("hip hop",)
    assert parse_prompt("8bit").matched == ("8-bit",)
    assert parse_prompt("lofi hip hop").matched == ("lo-fi hip hop",)
    assert parse_prompt("hi-hat").matched == ("hi hats",)
    assert parse_prompt("arpeggios").matched == ("arpeggio",)
    assert parse_prompt("pad").matched == ("pads",)


def test_multi_word_phrases_take_precedence() -> None:
    dnb = parse_prompt("drum and bass")
    assert dnb.matched == ("drum and bass",)
    assert StyleView(dnb.vector).tempo == 174
    assert StyleView(dnb.vector).pattern_breakbeat == 1.0

    separate = parse_prompt("drums and bass")
    assert separate.matched == ("drums", "bass")
    assert StyleView(separate.vector).tempo == NEUTRAL["tempo"]

    assert parse_prompt("deep house").matched == ("deep house",)
    assert parse_prompt("deep techno").matched == ("deep", "techno")
    assert parse_prompt("dark lo-fi hip hop beats").matched == ("dark", "lo-fi hip hop")


def test_stop_words_ignored_silently() -> None:
    parsed = parse_prompt("some techno music with the vibes of a song")
    assert parsed.matched == ("techno",)
    assert parsed.unknown == ()


def test_unknown_words_reported_in_order() -> None:
    parsed = parse_prompt("techno with kazoo and glorp")
    assert parsed.matched == ("techno",)
    assert parsed.unknown == ("kazoo", "glorp")


def test_no_known_word_suggests_nearest() -> None:
    with pytest.raises(PromptError) as info:
        parse_prompt("jaz")  # too short to be corrected: refused with a suggestion
    message = str(info.value)
    assert "'jaz'" in message
    assert "did you mean" in message
    assert "jazz" in message


def test_no_known_word_without_close_match_still_helps() -> None:
    with pytest.raises(PromptError, match=r"no known musical word in prompt 'qqqq zzzz'.*known_words"):
        parse_prompt("qqqq zzzz")


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "music with the"])
def test_empty_or_filler_only_prompt_is_an_error(text: str) -> None:
    with pytest.raises(PromptError):
        parse_prompt(text)


@pytest.mark.parametrize("text", ["techno 128 bpm", "techno 128bpm", "techno at 128 BPM", "128 bpm techno"])
def test_explicit_tempo(text: str) -> None:
    parsed = parse_prompt(text)
    assert StyleView(parsed.vector).tempo == 128.0
    assert "128 bpm" in parsed.matched and "techno" in parsed.matched


def test_tempo_alone_is_enough() -> None:
    parsed = parse_prompt("95 bpm")
    assert parsed.matched == ("95 bpm",)
    assert StyleView(parsed.vector).tempo == 95.0


@pytest.mark.parametrize(("text", "value"), [("techno 300 bpm", "300"), ("ambient 20bpm", "20")])
def test_tempo_out_of_range_names_the_value(text: str, value: str) -> None:
    with pytest.raises(PromptError, match=rf"tempo {value} bpm in prompt '{text}' is outside 40–240 bpm"):
        parse_prompt(text)


def test_combination_is_the_mean_of_the_entries_that_speak() -> None:
    mixed = view("dark happy")
    assert mixed.minor == pytest.approx((VOCABULARY["dark"]["minor"] + VOCABULARY["happy"]["minor"]) / 2)
    assert mixed.brightness == pytest.approx((VOCABULARY["dark"]["brightness"] + VOCABULARY["happy"]["brightness"]) / 2)
    # "dark" says nothing about energy: only "happy" does
    assert mixed.energy == pytest.approx(VOCABULARY["happy"]["energy"])
    # nobody speaks about tempo or harmony: neutral
    assert mixed.tempo == NEUTRAL["tempo"]
    assert mixed.harmony == NEUTRAL["harmony"]


def test_genre_plus_mood_averages_patterns_sensibly() -> None:
    v = view("techno dubstep")
    assert v.pattern_four_floor == pytest.approx(0.5)
    assert v.pattern_halftime == pytest.approx(0.5)
    assert v.pattern_rock == 0.0


# --------------------------------------------------------------------------- contrasting prompts


def test_three_contrasting_prompts_land_far_apart() -> None:
    calm = view("calm ambient pads")
    dnb = view("aggressive drum and bass")
    piano = view("solo piano")

    assert 60 <= calm.tempo <= 80
    assert calm.energy <= 0.25
    assert calm.drums == 0.0
    assert calm.pads == 1.0
    assert calm.space >= 0.7

    assert dnb.tempo == pytest.approx(174, abs=3)
    assert dnb.energy >= 0.9
    assert dnb.drums == 1.0 and dnb.bass == 1.0
    assert dnb.pattern_breakbeat == 1.0
    assert dnb.grit >= 0.4
    assert dnb.brightness >= 0.65

    assert piano.keys == 1.0
    assert piano.acoustic == 1.0
    assert piano.drums == 0.0

    assert dnb.tempo - calm.tempo >= 90
    assert dnb.energy - calm.energy >= 0.7
    vectors = [calm.vector, dnb.vector, piano.vector]
    unit_dims = [i for i, d in enumerate(DIMENSIONS) if d != "tempo"]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.linalg.norm(vectors[i][unit_dims] - vectors[j][unit_dims]) > 1.0


def families(v: StyleView) -> dict[str, float]:
    return {f: getattr(v, f) for f in INSTRUMENT_FAMILIES}


def test_solo_piano_has_keys_as_the_only_family() -> None:
    assert families(view("solo piano")) == {f: (1.0 if f == "keys" else 0.0) for f in INSTRUMENT_FAMILIES}
    # a genre around it does not bring the band back
    jazz = families(view("jazz solo piano"))
    assert jazz["keys"] > 0.8
    assert all(level == 0.0 for family, level in jazz.items() if family != "keys")


def test_solo_keeps_only_the_named_instruments() -> None:
    violin = families(view("solo violin"))
    assert violin["lead"] == 1.0
    assert violin["drums"] == violin["bass"] == violin["keys"] == violin["plucks"] == violin["texture"] == 0.0
    # with no instrument named, solo keeps the strongest family of the mix
    solo_jazz = families(view("solo jazz"))
    assert sum(level > 0 for level in solo_jazz.values()) == 1


def test_no_drums_and_no_bass_modifiers() -> None:
    for text in ("techno no drums", "techno without drums", "no drums techno", "drumless techno"):
        v = view(text)
        assert v.drums == 0.0, text
        assert v.tempo == 130 and v.bass > 0.5, text
    v = view("dubstep with no bass")
    assert v.bass == 0.0 and v.drums == 1.0


def test_moods_move_the_same_genre() -> None:
    dark = view("dark house")
    happy = view("happy house")
    assert dark.brightness < happy.brightness
    assert dark.minor > happy.minor
    assert view("energetic house").energy > view("calm house").energy
    assert view("fast house").tempo > view("slow house").tempo


# --------------------------------------------------------------------------- prompts as people type them (issue 14)

import csv  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from cadenza.runtime.backends.synth.style import INDEX, vector_from  # noqa: E402
from cadenza.runtime.backends.synth.vocabulary import (  # noqa: E402
    ERAS,
    GAME,
    HEADWORD,
    SCENES,
    WORLD,
    describe_words,
    explain,
    search_words,
)

CORPUS = Path(__file__).parent / "data" / "prompts" / "real_prompts.csv"


def corpus() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_vocabulary_has_a_thousand_terms_in_every_kind() -> None:
    assert len(VOCABULARY) >= 1000
    assert len(set(HEADWORD.values())) >= 600, "distinct meanings, not only spellings"
    sizes = {"genres": 250, "world": 100, "instruments": 250, "moods": 200, "textures": 200, "eras": 30,
             "scenes": 200, "game": 100, "modifiers": 20}  # fmt: skip
    for category, minimum in sizes.items():
        assert len(CATEGORIES[category]) >= minimum, category


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("electronic groove", ("electronic", "groove")),
        ("80s synth-pop", ("80s", "synth pop")),
        ("1980s synthpop", ("1980s", "synthpop")),
        ("eighties synth pop", ("eighties", "synth pop")),
        ("boss battle", ("boss battle",)),
        ("rainy night jazz cafe", ("rainy night", "jazz cafe")),
        ("afrobeat", ("afrobeat",)),
        ("k-pop", ("k-pop",)),
        ("K Pop", ("k-pop",)),
        ("celtic harp", ("celtic harp",)),
        ("stealth mission", ("stealth mission",)),
        ("heavy metal riffs", ("heavy metal", "riffs")),
        ("jazzy drumming", ("jazz", "drumming")),
        ("funky grooves", ("funky", "grooves")),
        ("bossa nova, flamenco, gamelan, reggaeton", ("bossa nova", "flamenco", "gamelan", "reggaeton")),
        ("cumbia qawwali highlife samba tango klezmer", ("cumbia", "qawwali", "highlife", "samba", "tango", "klezmer")),
        ("sitar and koto over a neon city", ("sitar", "koto", "neon city")),
        ("forest exploration", ("forest", "exploration")),
        ("space station menu", ("space station", "menu")),
        ("victory fanfare, game over", ("victory", "fanfare", "game over")),
        ("puzzle then chase", ("puzzle", "chase")),
    ],
)
def test_issue_prompts_are_understood(text: str, expected: tuple[str, ...]) -> None:
    parsed = parse_prompt(text)
    assert parsed.matched == expected
    assert parsed.unknown == ()


@pytest.mark.parametrize(
    ("word", "entry"),
    [("jazzy", "jazz"), ("punky", "punk"), ("darker", "dark"), ("gently", "gentle"), ("bluesy", "blues"),
     ("trancey", "trance"), ("spacey", "space"), ("chilled", "chill"), ("crackling", "crackle"),
     ("epically", "epic"), ("happier", "happy"), ("technoish", "techno"), ("poppy", "pop"), ("synthy", "synth")],
)  # fmt: skip
def test_word_forms_reach_their_entry(word: str, entry: str) -> None:
    parsed = parse_prompt(word)
    assert parsed.matched == (entry,), parsed.matched
    assert parsed.spans == ((word, entry),)


def test_a_filler_word_never_turns_into_an_entry() -> None:
    # "key" is filler although "keys" is an instrument; suffix stripping never lands on a stop word
    parsed = parse_prompt("techno in the key of a minor")
    assert "keys" not in parsed.matched
    assert parse_prompt("techno works well").unknown == ("works", "well")


def test_eras_move_the_production() -> None:
    eighties = view("80s pop")
    assert view("'80s pop").vector.tolist() == view("1980s pop").vector.tolist() == eighties.vector.tolist()
    assert eighties.acoustic < view("pop").acoustic and eighties.pads > view("pop").pads
    assert view("70s funk").acoustic > view("funk 2010s").acoustic


def test_game_uses() -> None:
    boss, menu, stealth = view("boss battle"), view("main menu"), view("stealth")
    victory, over = view("victory"), view("game over")
    explore, puzzle, chase = view("exploration"), view("puzzle"), view("chase")
    assert boss.tempo >= 150 and boss.energy >= 0.9 and boss.minor >= 0.9
    assert menu.energy <= 0.35 and menu.sections <= 0.3  # a menu loops quietly
    assert stealth.energy <= 0.4 and stealth.brightness <= 0.35 and stealth.minor >= 0.85
    assert victory.minor == 0.0 and victory.brightness >= 0.85
    assert over.minor == 1.0 and over.energy <= 0.25 and over.tempo < 80
    assert chase.tempo > explore.tempo > over.tempo and chase.energy == 1.0
    assert explore.energy < boss.energy and puzzle.energy < 0.4


def test_world_genres_have_their_own_colours() -> None:
    assert view("flamenco").minor >= 0.85 and view("flamenco").plucks == 1.0
    assert view("tango").drums == 0.0 and view("tango").minor >= 0.8
    assert view("gamelan").plucks == 1.0 and view("gamelan").prog_modal == 1.0
    assert view("reggaeton").pattern_four_floor == 1.0 and 85 <= view("reggaeton").tempo <= 100
    assert view("samba").energy > view("bossa nova").energy
    assert view("k-pop").energy >= 0.8 and view("k-pop").brightness >= 0.8
    assert view("celtic").fifths >= 0.65 and view("celtic harp").plucks == 1.0
    assert view("klezmer").minor >= 0.8 and view("qawwali").lead == 1.0
    for name in WORLD:
        point = VOCABULARY[name]
        assert "tempo" in point and "energy" in point, name


def test_genres_speak_about_harmony_and_groove_families() -> None:
    for name in GENRES + WORLD:
        point = VOCABULARY[name]
        prog = [point.get(f"prog_{p}") for p in ("pop", "jazz", "modal", "epic")]
        if any(value is not None for value in prog):
            assert sorted(value or 0.0 for value in prog) == [0.0, 0.0, 0.0, 1.0], name
    assert view("jazz").pattern_jazz == 1.0 and view("jazz").prog_jazz == 1.0
    assert view("house").offbeat == 1.0 and view("techno").offbeat == 0.0
    assert view("lo-fi").laidback >= 0.8
    assert view("trailer music").prog_epic == 1.0 and view("trailer music").sections == 1.0


def test_unknown_words_are_still_named_and_only_nothing_is_an_error() -> None:
    parsed = parse_prompt("boss battle with a flibbertigibbet")
    assert parsed.matched == ("boss battle",) and parsed.unknown == ("flibbertigibbet",)
    with pytest.raises(PromptError, match="no known musical word in prompt 'flibbertigibbet wobblewonk'"):
        parse_prompt("flibbertigibbet wobblewonk")


def test_unknown_words_reach_the_backend_warning() -> None:
    from cadenza.runtime.backends.base import TextPrompt
    from cadenza.runtime.backends.synth.engine import SynthBackend

    embedding = SynthBackend().embed(TextPrompt("rainy night jazz cafe with zorblax"))
    assert embedding.warnings == ("prompt 'rainy night jazz cafe with zorblax': unknown word(s) 'zorblax' ignored",)


def test_words_documentation() -> None:
    lines = describe_words()
    assert [line.split(" (")[0] for line in lines] == [*CATEGORIES, "filler"]
    assert any("afrobeat" in line for line in lines if line.startswith("world"))
    hits = search_words("Harp")
    assert any(h.startswith("celtic harp [instruments]") for h in hits)
    assert not any(h.startswith("sharp") for h in hits)
    out = explain("80s synth-pop boss battle, drumming, flibber")
    assert any(line.startswith("  '80s' → 80s [eras]") for line in out)
    assert any(line.startswith("  'boss battle' → boss battle [game]") for line in out)
    assert any("'flibber' → not understood" in line for line in out)
    assert out[-1].strip().startswith("tempo=")


def test_loading_stays_fast() -> None:
    """The tables are read once at import; reading them again costs milliseconds, and a prompt well under one."""
    import time

    from cadenza.runtime.backends.synth import lexicon, vocabulary

    start = time.perf_counter()
    vocabulary._load_tables(lexicon.TABLES, lexicon.HIDDEN_BASES)
    load = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(200):
        parse_prompt("The low quality recording features a groovy 80s synth-pop song with punchy drums")
    per_prompt = (time.perf_counter() - start) / 200
    assert load < 0.25, f"tables took {load * 1e3:.0f} ms"  # ~10 ms on a quiet laptop core; generous for loaded CI
    assert per_prompt < 0.005, f"{per_prompt * 1e3:.2f} ms per prompt"


# ----------------------------------------------------------------- the corpus: real prompts, acceptance and plausibility

_GENRE_NAMES = set(GENRES) | set(WORLD)
_GENRE_HEADS: dict[str, np.ndarray] = {}
for _name in sorted(_GENRE_NAMES):
    _GENRE_HEADS.setdefault(HEADWORD[_name], vector_from(VOCABULARY[_name]))
_SCALE = np.ones(STYLE_DIM)
_SCALE[INDEX["tempo"]] = 1 / 100  # 10 bpm weighs as much as 0.1 of a unit dimension

#: Directional words: (headwords, dimension, +1 raises / -1 lowers, the level that already counts as "there").
DIRECTIONS: list[tuple[frozenset[str], str, int, float]] = [
    (frozenset({"fast", "fast tempo", "frantic", "double time", "uptempo"}), "tempo", +1, 125.0),
    (frozenset({"slow", "slow tempo", "lazy", "sleep"}), "tempo", -1, 95.0),
    (frozenset({"calm", "calming", "gentle", "peaceful", "serene", "relaxed", "relaxing", "chill", "mellow",
                "meditative", "soothing", "lazy", "sleep"}), "energy", -1, 0.35),
    (frozenset({"energetic", "lively", "driving", "aggressive", "intense", "upbeat", "frantic", "fierce"}),
     "energy", +1, 0.65),
    (frozenset({"dark", "brooding", "ominous", "sinister", "gloomy", "eerie", "haunting", "creepy", "spooky",
                "horror score", "dark mix"}), "brightness", -1, 0.35),
    (frozenset({"bright", "happy", "cheerful", "joyful", "uplifting", "sunny", "bright mood",
                "punchy mix"}), "brightness", +1, 0.65),
    (frozenset({"sad", "melancholic", "melancholy", "sorrowful", "somber", "gloomy", "minor key"}), "minor", +1, 0.7),
    (frozenset({"happy", "cheerful", "joyful", "triumphant", "major key", "upbeat"}), "minor", -1, 0.3),
]  # fmt: skip


def genre_check(parsed: ParsedPrompt) -> str | None:
    """A prompt naming genres lands among the nearest 5 % of the ~300 genre points to one of them, and within
    the nearest quarter of every one it names (a blend sits between its genres)."""
    named = list(dict.fromkeys(HEADWORD[m] for m in parsed.matched if m in _GENRE_NAMES))
    if not named:
        return None
    heads = list(_GENRE_HEADS)
    points = np.array([_GENRE_HEADS[h] for h in heads])
    d = np.linalg.norm((points - parsed.vector) * _SCALE, axis=1)
    share = {h: float((d < d[heads.index(h)]).mean()) for h in named}
    if min(share.values()) <= 0.05 and max(share.values()) <= 0.25:
        return None
    return f"genres {share} (share of genre points nearer than the named one)"


def direction_check(text: str, parsed: ParsedPrompt) -> str | None:
    """Each directional word moves its dimension its way (compared with the prompt without it), or the prompt
    is already there (a calm word in a calm prompt)."""
    explicit_tempo = any(m.endswith(" bpm") for m in parsed.matched)
    for words, entry in parsed.spans:
        head = HEADWORD.get(entry, entry)
        for heads, dim, sign, level in DIRECTIONS:
            if head not in heads or (dim == "tempo" and explicit_tempo):
                continue
            with_it = float(parsed.vector[INDEX[dim]])
            rest = [m for m in parsed.matched if m != entry and m in VOCABULARY]
            without = float(vector_from({})[INDEX[dim]]) if not rest else float(
                parse_prompt(" ".join(rest)).vector[INDEX[dim]])  # the same entries, in order
            moved = sign * (with_it - without) > 1e-9
            there = sign * (with_it - level) >= 0
            if not (moved or there):
                return f"{words!r} ({head}) should move {dim} {'up' if sign > 0 else 'down'}: {without:g} → {with_it:g}"
    return None


def test_corpus_names_its_sources_and_is_large() -> None:
    rows = corpus()
    assert len(rows) >= 300
    header = CORPUS.read_text(encoding="utf-8").split("\nprompt,source,ref\n")[0]
    for source in {r["source"] for r in rows}:
        assert re.search(rf"^#\s+{re.escape(source)}\s+- ", header, re.M), f"source {source!r} is not described"
    assert len({r["prompt"] for r in rows}) >= 290, "mostly distinct prompts"


def test_corpus_acceptance_and_plausibility() -> None:
    """Issue 14's must-hold: >= 95 % of the gathered prompts accepted with a plausible mapping.

    Accepted: no error (at least one word understood). Plausible: the genre check and the direction checks hold.
    Reported figures (2026-12-07): 379/381 accepted (99.5 %), 376/381 accepted and plausible (98.7 %)."""
    rows = corpus()
    accepted = plausible = 0
    problems: list[str] = []
    for row in rows:
        text = row["prompt"]
        try:
            parsed = parse_prompt(text)
        except PromptError:
            problems.append(f"not accepted: {text!r}")
            continue
        accepted += 1
        why = genre_check(parsed) or direction_check(text, parsed)
        if why is None:
            plausible += 1
        else:
            problems.append(f"implausible: {text!r}: {why}")
    print(f"\ncorpus: {len(rows)} prompts, {accepted} accepted ({accepted / len(rows):.1%}), "
          f"{plausible} accepted and plausible ({plausible / len(rows):.1%})\n" + "\n".join(problems))
    assert accepted / len(rows) >= 0.95, problems
    assert plausible / len(rows) >= 0.95, problems


def test_directional_words_point_the_right_way_in_the_tables() -> None:
    for heads, dim, sign, _level in DIRECTIONS:
        neutral = float(vector_from({})[INDEX[dim]])
        for name, head in HEADWORD.items():
            if head in heads and dim in VOCABULARY[name]:
                assert sign * (VOCABULARY[name][dim] - neutral) > 0, (name, dim, VOCABULARY[name][dim])


#: A hand-checked sample of 40 gathered prompts (read with `cadenza words --explain`) and what a musician expects.
#: Conditions: dim>v, dim<v, pattern=NAME (the strongest drum pattern), prog=NAME, top=FAMILY (among the three
#: loudest instrument families).
HAND_CHECKED: list[tuple[str, str]] = [
    ("Bossa Nova", "acoustic>0.9 harmony>0.7 prog=jazz top=plucks"),
    ("Chillwave", "energy<0.5 space>0.6 acoustic<0.3"),
    ("Drum and Bass", "tempo>165 pattern=breakbeat energy>0.8"),
    ("Post Punk", "minor>0.7 tempo>130 pattern=rock"),
    ("Shoegaze", "space>0.85 grit>0.5 top=pads"),
    ("Lush Strings", "acoustic>0.9 top=pads space>0.6"),
    ("Sparkling Arpeggios", "brightness>0.8 top=plucks"),
    ("Dubstep", "pattern=halftime grit>0.8 tempo>135"),
    ("K Pop", "energy>0.8 brightness>0.8 minor<0.4"),
    ("Neo Soul", "harmony>0.9 laidback>0.2 swing>0.3"),
    ("Trip Hop", "tempo<95 minor>0.7 pattern=boombap"),
    ("Thrash", "tempo>170 grit>0.9 minor>0.9"),
    ("Afrobeat", "tempo>100 tempo<125 prog=modal offbeat>0.4"),
    ("Flamenco", "minor>0.8 top=plucks acoustic>0.9"),
    ("Reggaeton", "tempo<100 pattern=four_floor bass>0.85"),
    ("Celtic Folk", "acoustic>0.9 lead>0.8 fifths>0.6"),
    ("Amapiano", "tempo<120 pattern=four_floor keys>0.8"),
    ("Bollywood", "lead>0.9 energy>0.6"),
    ("Gregorian", "drums<0.05 top=pads space>0.9"),
    ("Haunted House", "minor>0.9 brightness<0.25"),
    ("Christmas", "minor<0.1 brightness>0.7"),
    ("Dungeon Synth", "drums<0.05 minor>0.6 top=pads"),
    ("Spooky Jazz", "minor>0.9 pattern=jazz"),
    ("happy rock", "minor<0.3 pattern=rock energy>0.6"),
    ("energetic EDM", "energy>0.85 pattern=four_floor"),
    ("sad jazz", "minor>0.7 pattern=jazz harmony>0.7"),
    ("80s pop track with bassy drums and synth", "acoustic<0.2 pattern=rock"),
    ("90s rock song with loud guitars and heavy drums", "grit>0.4 energy>0.75 pattern=rock"),
    ("80s blues track with groovy saxophone", "swing>0.4 lead>0.75 acoustic<0.6"),
    ("night club music, sad, piano, trumpet, moody, jazz, slow beat", "minor>0.7 pattern=jazz top=keys"),
    ("jazzy rapping from paris", "swing>0.5 harmony>0.7"),
    ("minimal techno", "pattern=four_floor prog=modal energy<0.6"),
    ("Compose a lullaby that soothes the listener into a peaceful sleep.", "energy<0.15 tempo<70 drums<0.05"),
    ("Imagine a carnival atmosphere and compose a lively, energetic tune for it.", "energy>0.8 minor<0.3"),
    ("Reflect the beauty of autumn leaves cascading in the wind through a gentle and melancholic melody.",
     "energy<0.4 minor>0.6"),
    ("Imagine a journey through space and compose the soundtrack for it.", "space>0.7 energy<0.5"),
    ("This song is a vigorous metal instrumental.", "grit>0.9 energy>0.9 pattern=rock"),
    ("The clip has a relaxing, chill, mellow vibe.", "energy<0.35 tempo<95"),
    ("This is an acoustic folk piece.", "acoustic>0.95 top=plucks"),
    ("This is a Turkish arabesque rap music piece.", "minor>0.75 prog=modal"),
]


def _condition_holds(v: StyleView, condition: str) -> bool:
    if condition.startswith("pattern="):
        name = condition.split("=")[1]
        return max(PATTERNS, key=lambda p: getattr(v, f"pattern_{p}")) == name
    if condition.startswith("prog="):
        name = condition.split("=")[1]
        return max(("pop", "jazz", "modal", "epic"), key=lambda p: getattr(v, f"prog_{p}")) == name
    if condition.startswith("top="):
        family = condition.split("=")[1]
        return family in sorted(INSTRUMENT_FAMILIES, key=lambda f: -getattr(v, f))[:3]
    dim, op, number = re.match(r"(\w+)([<>])([\d.]+)$", condition).groups()  # type: ignore[union-attr]
    return getattr(v, dim) > float(number) if op == ">" else getattr(v, dim) < float(number)


def test_hand_checked_sample_from_the_corpus() -> None:
    prompts = {r["prompt"] for r in corpus()}
    assert len(HAND_CHECKED) == 40
    for text, conditions in HAND_CHECKED:
        assert text in prompts, f"{text!r} is not in the corpus"
        v = view(text)
        failed = [c for c in conditions.split() if not _condition_holds(v, c)]
        assert not failed, f"{text!r}: {failed} (explain: {explain(text)})"


# --------------------------------------------------------------------------- outside test 14 (#3, #5, #6, #7, #8, #18)


def _engine_key(text: str, seed: int = 0) -> str:
    """The key the synth engine chooses for a prompt (its sequencer's key after a short render)."""
    from cadenza.runtime.backends.base import Controls, TextPrompt
    from cadenza.runtime.backends.synth.engine import SynthBackend

    backend = SynthBackend()
    state = backend.new_stream(seed)
    _, state = backend.generate(state, backend.embed(TextPrompt(text)).vector, Controls(), 4800)
    return str(state.seq.key)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("house in D minor", "D minor"),
        ("house in E major", "E major"),
        ("slow sad piano in D minor", "D minor"),
        ("C# major techno", "C# major"),  # 7 sharps: played as its enharmonic Db major
        ("dark ambient in F sharp minor", "F# minor"),
        ("Eb jazz ballad", "D# major"),
        ("bright happy pop, A flat major", "G# major"),
        ("funky house in g dorian", "G dorian"),
        ("euphoric bright trance in a minor", "A minor"),  # brightness 0.9 does not push the key sharp-wards
        ("lofi in the key of d", "D major"),
        ("chiptune in B♭ mixolydian", "A# mixolydian"),
    ],
)
def test_named_key_is_the_key_the_synth_plays(text: str, key: str) -> None:
    assert _engine_key(text) == key


def test_named_key_is_heard_in_the_audio() -> None:
    """From the rendered audio (seed 0): the chroma of 'house in D minor' fits D minor's signature (one flat;
    its tonal centre is the synth's business: house's minor loops lean on the relative major); 'ambient in
    D minor' measures D minor outright with a Krumhansl–Kessler key profile; 'house in E major' fits four
    sharps; 'house in G major' one sharp."""
    from cadenza.runtime.backends.base import Controls, TextPrompt
    from cadenza.runtime.backends.synth.engine import SAMPLE_RATE, SynthBackend

    diatonic = np.array([0, 2, 4, 5, 7, 9, 11])
    major = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
    minor = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
    backend = SynthBackend()

    def chroma(text: str) -> np.ndarray:
        state = backend.new_stream(0)
        pcm, _ = backend.generate(state, backend.embed(TextPrompt(text)).vector, Controls(), 8 * SAMPLE_RATE)
        x = np.asarray(pcm, dtype=np.float64).mean(axis=1)[SAMPLE_RATE:]
        spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
        f = np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)
        band = (f >= 80.0) & (f <= 2000.0)
        pcs = np.round(12 * np.log2(f[band] / 440.0)).astype(int) % 12  # 0 = A
        out = np.bincount((pcs + 9) % 12, weights=spec[band], minlength=12)  # 0 = C
        return out / out.sum()

    def signature(c: np.ndarray) -> int:
        return max(range(-6, 6), key=lambda s: c[(diatonic + 7 * s) % 12].sum())

    def best_keys(c: np.ndarray) -> list[tuple[int, str]]:
        r = {(t, m): float(np.corrcoef(np.roll(p, t), c)[0, 1]) for t in range(12) for m, p in
             (("major", major), ("minor", minor))}
        return sorted(r, key=lambda k: -r[k])

    d_minor = chroma("house in D minor")
    assert signature(d_minor) == -1, np.round(d_minor, 3)
    assert best_keys(chroma("ambient in D minor"))[0] == (2, "minor")
    assert signature(chroma("house in E major")) == 4
    # plain 'house' (seed 0: F mixolydian, two flats) reads one flat since its kick sits on F (a036c32), so it
    # no longer tells D minor apart; a third named key does: the estimate follows the name
    assert signature(chroma("house in G major")) == 1


@pytest.mark.parametrize("word", ["minor", "major", "dorian", "mixolydian", "lydian", "phrygian", "aeolian"])
def test_mode_words_alone_are_understood(word: str) -> None:
    parsed = parse_prompt(f"house {word}")
    assert parsed.unknown == () and len(parsed.matched) == 2
    assert (view(f"house {word}").minor > 0.7) == (word in ("minor", "phrygian", "aeolian"))


def test_a_key_never_hides_in_ordinary_words() -> None:
    """Single letters are keys only with a mode word, an accidental or after 'in' / 'key of'."""
    for text in ("in a dark cathedral", "a sharp attack on techno", "techno at -6 db", "e piano ballad"):
        assert parse_prompt(text).key is None, text


def test_filler_words_are_documented_and_shown_not_warned() -> None:
    """Filler words (vibes, beats, song …) are skipped without a warning, and the README, `cadenza words`
    and --explain all say so."""
    from pathlib import Path

    from cadenza.runtime.backends.synth.vocabulary import STOP_WORDS, describe_words, explain

    parsed = parse_prompt("chill vibes only")
    assert parsed.unknown == () and parsed.filler == ("vibes", "only")
    assert parsed.warnings("chill vibes only") == ()
    filler_line = describe_words()[-1]
    assert filler_line.startswith(f"filler ({len(STOP_WORDS)}; skipped without a warning")
    for word in ("vibes", "beats", "song", "music", "track", "tune"):
        assert f" {word}," in filler_line or filler_line.endswith(f" {word}")
    assert "  'vibes' → filler" in "\n".join(explain("chill vibes only"))
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert "filler words (a, the, music, song, vibes, beats" in readme and "skipped without a warning" in readme


def test_genre_and_game_words_own_tempo_and_drums_over_scenes() -> None:
    """The tester's 40-word boss prompt kept the boss battle's pace instead of sliding to 126 bpm."""
    boss = ("epic boss battle with choirs and pounding drums and heavy distorted guitars in a dark cathedral "
            "while thunder rolls outside and the hero faces the final demon lord in a desperate last stand "
            "with soaring strings and brass stabs")
    v = view(boss)
    assert v.tempo >= 140 and v.drums >= 0.85 and v.energy >= 0.75, (v.tempo, v.drums, v.energy)
    short = view("boss battle")
    assert abs(v.tempo - short.tempo) < 15
    # a scene still colours what it owns: space and pads
    assert view("boss battle in a cathedral").space > short.space


@pytest.mark.parametrize(
    ("text", "entry"),
    [("techo", "techno"), ("hous music", "house"), ("ambiant", "ambient"), ("orchestal", "orchestral"),
     ("synthwav", "synthwave"), ("technno", "techno")],
)
def test_misspellings_are_corrected_with_a_warning(text: str, entry: str) -> None:
    from cadenza.runtime.backends.base import TextPrompt
    from cadenza.runtime.backends.synth.engine import SynthBackend

    parsed = parse_prompt(text)
    assert entry in parsed.matched and parsed.unknown == ()
    (typo,) = [w for w, e in parsed.corrected]
    warning = SynthBackend().embed(TextPrompt(text)).warnings
    assert warning == (f"prompt {text!r}: read misspelt word(s) {typo!r} as {entry!r}",)
    assert np.array_equal(parse_prompt(text).vector, parse_prompt(text.replace(typo, entry)).vector)


def test_near_misses_beside_known_words_stay_unknown_with_a_suggestion() -> None:
    """Beside known words a near miss is more often another English word (cover/covert, walking/talking): it is
    not corrected; the warning names it and suggests the entry."""
    parsed = parse_prompt("lo-fi beats with rain techo")
    assert parsed.corrected == () and parsed.unknown == ("techo",) and "techno" in parsed.suggested
    (warning,) = parsed.warnings("lo-fi beats with rain techo")
    assert warning.endswith("unknown word(s) 'techo' ignored (did you mean: " + ", ".join(parsed.suggested) + "?)")
    assert parse_prompt("a cover of a jazz song").corrected == ()
    with pytest.raises(PromptError, match="did you mean: mall"):  # a typo keeps its first letter: not corrected
        parse_prompt("small")


def test_accents_are_folded() -> None:
    assert parse_prompt("bossa nóva").matched == ("bossa nova",)
    assert parse_prompt("électronique").matched == ("electronique",)
    assert StyleView(parse_prompt("électronique").vector).tempo == view("electronic").tempo
    assert parse_prompt("música electrónica").unknown == ()


def test_far_words_are_not_corrected() -> None:
    """Only a close, unambiguous spelling is corrected; others stay unknown (and named)."""
    parsed = parse_prompt("techno with zorblax and flibber")
    assert parsed.corrected == () and parsed.unknown == ("zorblax", "flibber")


def test_shipped_example_graphs_have_no_unknown_words() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = sorted(str(p) for p in (root / "examples").glob("*/graph.yaml"))
    assert len(files) >= 4
    done = subprocess.run([sys.executable, "-m", "cadenza", "graph", "check", *files], capture_output=True,
                          text=True, timeout=120, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stderr, done.stderr
