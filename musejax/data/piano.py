"""The piano's range, the one definition every encoding, model, reader and plot uses."""

PIANO_LOW_PITCH = 21  # A0
PIANO_KEYS = 88
PIANO_HIGH_PITCH = PIANO_LOW_PITCH + PIANO_KEYS - 1  # C8 = MIDI 108
