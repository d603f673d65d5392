"""Reference RAG question-answering service deployed by ragops.platform."""
