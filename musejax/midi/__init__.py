"""MIDI out of NoteSequences and back: the MIDI writer and the text/signature events note-seq drops (meta),
tracks and their selection, General MIDI names, and piano-roll plots."""
