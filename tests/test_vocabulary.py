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
        parse_prompt("tecno")
    message = str(info.value)
    assert "'tecno'" in message
    assert "did you mean" in message
    assert "techno" in message


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
