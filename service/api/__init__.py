"""Thin FastAPI routes: translate HTTP to service calls and back."""
