"""A fake TMDB API v3 server (tests, the demo, the benchmark): see :mod:`fake_tmdb.server`."""

from fake_tmdb.catalogue import Catalogue, FakeMovie, build_catalogue, read_imdb_horror
from fake_tmdb.server import FakeTMDb, serve_fake_tmdb

__all__ = [
    "Catalogue",
    "FakeMovie",
    "FakeTMDb",
    "build_catalogue",
    "read_imdb_horror",
    "serve_fake_tmdb",
]
