"""MIDI out of NoteSequences and back: the MIDI writer and the text/signature events note-seq drops (meta),
tracks and their selection, General MIDI names, piano-roll plots, and audio (FluidSynth or the built-in synth)."""
