"""The fake TMDB server's later days: the same catalogue, other popularity and vote counts."""

from __future__ import annotations

import pytest
import requests

from fake_tmdb import build_catalogue, serve_fake_tmdb
from fake_tmdb.catalogue import on_day


def test_a_later_day_keeps_every_movie_and_moves_popularity_and_votes() -> None:
    first = build_catalogue(movies=500, seed=4)
    second = build_catalogue(movies=500, seed=4, day=2)
    assert second.movies == build_catalogue(movies=500, seed=4, day=2).movies  # deterministic
    assert [m.id for m in second.movies] == [m.id for m in first.movies]
    moved = 0
    for before, after in zip(first.movies, second.movies, strict=True):
        # Titles, ids, links, dates, genres and details stay; only the day's measures move.
        unchanged = {"popularity", "vote_count"}
        for field in before.__dataclass_fields__:
            if field not in unchanged:
                assert getattr(after, field) == getattr(before, field), field
        assert before.popularity / 2 - 0.001 <= after.popularity <= before.popularity * 2 + 0.001
        assert after.vote_count >= before.vote_count
        if before.vote_count == 0:
            assert after.vote_count == 0  # a movie nobody voted for stays so
        moved += after.popularity != before.popularity
    assert moved > 0.9 * len(first.movies)
    third = build_catalogue(movies=500, seed=4, day=3)
    assert [m.popularity for m in third.movies] != [m.popularity for m in second.movies]


def test_day_one_is_the_catalogue_as_built_and_day_zero_is_refused() -> None:
    movie = build_catalogue(movies=20, seed=4).movies[0]
    assert on_day(movie, seed=4, day=1) is movie
    with pytest.raises(ValueError, match="day must be 1 or more"):
        on_day(movie, seed=4, day=0)


def test_the_server_serves_the_day_it_is_given() -> None:
    popularity: dict[int, dict[int, float]] = {}
    for day in (1, 2):
        with serve_fake_tmdb(api_key="demo-key", movies=40, day=day) as base_url:
            answer = requests.get(
                f"{base_url}/discover/movie",
                params={"api_key": "demo-key", "with_genres": "27", "page": "1"},
                timeout=5,
            )
            assert answer.status_code == 200
            popularity[day] = {m["id"]: m["popularity"] for m in answer.json()["results"]}
    common = popularity[1].keys() & popularity[2].keys()
    assert common and any(popularity[1][i] != popularity[2][i] for i in common)
