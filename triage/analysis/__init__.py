"""Analysis: the LLM call over the ranked evidence, its prompt, its answer, the fallback."""
