"""Answer generators: extractive (local default) and OpenAI-compatible chat completions."""
