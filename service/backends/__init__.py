"""Backend adapters: embedder, LLM, vector store, lexical encoder."""
