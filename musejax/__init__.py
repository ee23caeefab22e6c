"""musejax: AI music creation in JAX."""
__version__ = "0.1.0"
