-- The TMDB movies of the genre: every id that some snapshot lists with the genre id
-- (var tmdb_genre_id) among its genre_ids. One row per TMDB id, with the values of its latest
-- snapshot and the IMDb id its details link it to.

with

snapshots as (

    select * from {{ ref('stg_tmdb__movie_snapshots') }}
    where language = '{{ var("tmdb_language") }}'

),

details as (

    select * from {{ ref('stg_tmdb__movie_details') }}

),

genre_movie_ids as (

    select distinct tmdb_id
    from snapshots
    where {{ array_contains('genre_ids', var('tmdb_genre_id')) }}

),

snapshot_history as (

    select
        snapshots.*,
        row_number() over (
            partition by snapshots.tmdb_id
            order by snapshots.snapshot_date desc
        ) as snapshot_recency,
        count(*) over (partition by snapshots.tmdb_id) as snapshot_count,
        min(snapshots.snapshot_date) over (partition by snapshots.tmdb_id) as first_snapshot_date

    from snapshots
    inner join genre_movie_ids
        on snapshots.tmdb_id = genre_movie_ids.tmdb_id

),

latest_snapshot as (

    select * from snapshot_history
    where snapshot_recency = 1

),

genre_movies as (

    select
        latest_snapshot.tmdb_id,
        details.imdb_id,
        latest_snapshot.title,
        latest_snapshot.original_title,
        latest_snapshot.overview,
        latest_snapshot.original_language,
        coalesce(latest_snapshot.release_date, details.release_date) as release_date,
        details.runtime_minutes,
        details.budget,
        details.revenue,
        latest_snapshot.is_adult,
        latest_snapshot.genre_ids,
        latest_snapshot.popularity as latest_popularity,
        latest_snapshot.vote_average as latest_vote_average,
        latest_snapshot.vote_count as latest_vote_count,
        latest_snapshot.snapshot_date as latest_snapshot_date,
        latest_snapshot.first_snapshot_date,
        latest_snapshot.snapshot_count,
        details.tmdb_id is not null as has_details

    from latest_snapshot
    left join details
        on latest_snapshot.tmdb_id = details.tmdb_id

)

select * from genre_movies
