"""Re-embedding: a model name resolved to a local model, texts encoded on the best device, embeddings cached."""
