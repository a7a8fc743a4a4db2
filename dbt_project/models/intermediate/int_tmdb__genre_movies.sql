-- The TMDB movies of the genre: every id that some snapshot lists with the genre id
-- (var tmdb_genre_id). One row per TMDB id, with the values of its latest such snapshot
-- (int_tmdb__movie_latest_snapshots, built incrementally: no snapshot history is read here)
-- and the IMDb id its details link it to.

with

latest_snapshots as (

    select * from {{ ref('int_tmdb__movie_latest_snapshots') }}

),

details as (

    select * from {{ ref('stg_tmdb__movie_details') }}

),

genre_movies as (

    select
        latest_snapshots.tmdb_id,
        details.imdb_id,
        latest_snapshots.title,
        latest_snapshots.original_title,
        latest_snapshots.overview,
        latest_snapshots.original_language,
        coalesce(latest_snapshots.release_date, details.release_date) as release_date,
        details.runtime_minutes,
        details.budget,
        details.revenue,
        latest_snapshots.is_adult,
        latest_snapshots.genre_ids,
        latest_snapshots.popularity as latest_popularity,
        latest_snapshots.vote_average as latest_vote_average,
        latest_snapshots.vote_count as latest_vote_count,
        latest_snapshots.latest_snapshot_date,
        latest_snapshots.first_snapshot_date,
        latest_snapshots.snapshot_count,
        details.tmdb_id is not null as has_details

    from latest_snapshots
    left join details
        on latest_snapshots.tmdb_id = details.tmdb_id

)

select * from genre_movies
