"""Scoring answers against a question set (must_mention, outlet precision/recall, abstention)."""
