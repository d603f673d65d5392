"""Fallback layers of /api/query when full RAG fails: answer cache, FAQ keywords, apology."""
