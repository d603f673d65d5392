"""Embedding, the corpus in Redis and the in-process vector index."""
