"""Matching: text preparation, embeddings, the FAISS and FTS5 indexes, fusion, calibration, analysis."""
