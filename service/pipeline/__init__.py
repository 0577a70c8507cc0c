"""The services behind the routes: retrieve, answer, cite. None of them imports FastAPI."""
