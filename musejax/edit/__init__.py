"""Editing music: pure NoteSequence edits and the command-line edit spec.

ops.py   transpose, tempo, velocity, program, quantize, trim, merge and split: NoteSequence in, (NoteSequence,
         summary) out, never mutating the input
spec.py  one `musejax edit` option (`--transpose 2@violin`, ...) parsed into such a function, and its syntax help
"""
