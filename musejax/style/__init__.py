"""The style task: recognition, out-of-style rule and embeddings (moving here from train/style*.py and
classify.py, issue 15)."""
