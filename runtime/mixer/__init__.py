"""The mixer: decks (backend streams), equal-power crossfades, stinger ducking, master limiter."""
