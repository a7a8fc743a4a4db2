"""A tiny refined DuckDB file with the marts' columns the dashboard reads, written with SQL.

Four movies: k1 and k2 on both sources, k3 on TMDB only, k4 on IMDb only; two snapshot dates;
genres of both sources, with the lake's own genre (Horror, TMDB 27) and an unlisted TMDB id.
The dbt-built file (the slow browser test) checks the same queries against the real models.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

DDL = """
create table rpt_movies_wide as
select * from (values
    ('k1', 'tt0000001', 11, 'Night Visitor', 'Night Visitor', 'Night Visitor', 'Visitante Noturno',
     'Uma visita.', 'en', 2001, date '2001-05-01', 'May', 'Tuesday', 95, 'Horror, Thriller',
     'Terror, Thriller', 2, 'Ann Lee, Bo Park', 7.0, 500::bigint, 30.0, 6.5, 300::bigint,
     date '2024-03-02', date '2024-03-01', 2::bigint, 1000::bigint, 0::bigint, false, true,
     true, true, true),
    ('k2', 'tt0000002', 12, 'Café Macabre', 'Café Macabre', 'Café Macabre', 'Café Macabro',
     null, 'fr', 2001, date '2001-09-09', 'September', 'Sunday', 88, 'Horror',
     'Terror', 0, null, 6.0, 900::bigint, 10.0, 5.0, 40::bigint,
     date '2024-03-02', date '2024-03-01', 2::bigint, 0::bigint, 0::bigint, false, true,
     true, true, true),
    ('k3', null, 13, 'Sala 12', null, null, 'Sala 12',
     null, 'pt', 2003, null, null, null, null, null,
     'Terror, Thriller', 0, null, null, null, 50.0, 7.0, 70::bigint,
     date '2024-03-02', date '2024-03-01', 2::bigint, 0::bigint, 0::bigint, false, false,
     true, false, true),
    ('k4', 'tt0000004', null, 'Old Dread', 'Old Dread', 'Old Dread', null,
     null, null, 1950, null, null, null, 70, 'Horror',
     null, 0, null, 8.0, 50::bigint, null, null, null,
     null, null, 0::bigint, null, null, null, true,
     false, true, false)
) as t(
    movie_key, imdb_id, tmdb_id, title, imdb_primary_title, imdb_original_title, tmdb_title,
    tmdb_overview, original_language, release_year, release_date, release_month_name,
    release_day_name, runtime_minutes, imdb_genres, tmdb_genres, artist_count, artist_names,
    imdb_average_rating, imdb_num_votes, latest_popularity, latest_tmdb_vote_average,
    latest_tmdb_vote_count, latest_snapshot_date, first_snapshot_date, snapshot_count,
    tmdb_budget, tmdb_revenue, is_adult, is_known_to_imdb, is_known_to_tmdb, is_genre_in_imdb,
    is_genre_in_tmdb
);

create table fct_movie_popularity as
select * from (values
    ('k1', 20240301, 11, 'tt0000001', 20.0, 2, 6.4, 290::bigint, date '2024-03-01'),
    ('k2', 20240301, 12, 'tt0000002', 12.0, 3, 5.0, 39::bigint, date '2024-03-01'),
    ('k3', 20240301, 13, null, 40.0, 1, 7.0, 60::bigint, date '2024-03-01'),
    ('k1', 20240302, 11, 'tt0000001', 30.0, 2, 6.5, 300::bigint, date '2024-03-02'),
    ('k2', 20240302, 12, 'tt0000002', 10.0, 3, 5.0, 40::bigint, date '2024-03-02'),
    ('k3', 20240302, 13, null, 50.0, 1, 7.0, 70::bigint, date '2024-03-02')
) as t(movie_key, snapshot_date_key, tmdb_id, imdb_id, popularity, popularity_rank,
       tmdb_vote_average, tmdb_vote_count, snapshot_date);

create table agg_movies__by_release_year as
select * from (values
    (2003, 3, 1, 1, 1.0, 0, null, 0::bigint, 'k3', 'Sala 12', 50.0, null, null, null),
    (1950, 2, 1, 0, 0.0, 1, 8.0, 50::bigint, null, null, null, 'k4', 'Old Dread', 50::bigint),
    (2001, 1, 2, 2, 1.0, 2, 6.5, 1400::bigint, 'k1', 'Night Visitor', 30.0, 'k2',
     'Café Macabre', 900::bigint)
) as t(release_year, release_year_rank, titles, titles_on_tmdb, share_on_tmdb, rated_titles,
       average_rating, total_votes, most_popular_movie_key, most_popular_title,
       most_popular_popularity, most_voted_movie_key, most_voted_title, most_voted_votes);

create table dim_genre as
select * from (values
    ('g-horror', 'imdb', 'Horror', 'Horror', true),
    ('g-thriller', 'imdb', 'Thriller', 'Thriller', false),
    ('g-27', 'tmdb', '27', 'Terror', true),
    ('g-53', 'tmdb', '53', 'Thriller', false),
    ('g-99', 'tmdb', '99', null, false)
) as t(genre_key, genre_source, genre_code, genre_name, is_selected_genre);

create table bridge_movie_genre as
select * from (values
    ('k1', 'g-horror', 'imdb'), ('k1', 'g-thriller', 'imdb'), ('k1', 'g-27', 'tmdb'),
    ('k1', 'g-53', 'tmdb'), ('k2', 'g-horror', 'imdb'), ('k2', 'g-27', 'tmdb'),
    ('k2', 'g-99', 'tmdb'), ('k3', 'g-27', 'tmdb'), ('k3', 'g-53', 'tmdb'),
    ('k4', 'g-horror', 'imdb')
) as t(movie_key, genre_key, genre_source);
"""


def write_tiny_refined(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as connection:
        # Qualified by the catalog: a file named refined.duckdb has a catalog named refined.
        catalog = connection.execute("select current_database()").fetchone()[0]
        connection.execute(f'create schema "{catalog}".refined; use "{catalog}".refined')
        connection.execute(DDL)
    return path
