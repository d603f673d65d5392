"""Text normalisation, sentence splitting and chunking."""
