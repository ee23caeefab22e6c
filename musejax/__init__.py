"""musejax: AI music creation in JAX."""

import warnings as _warnings

__version__ = "0.1.0"

# pydub (pulled in by note-seq) warns on import that ffmpeg is missing; musejax never decodes audio with it.
# Set here, before any musejax module imports note-seq, so every entry point (the command, experiment scripts,
# the corpus parse workers) is quiet.
_warnings.filterwarnings("ignore", message="Couldn't find ffmpeg")
