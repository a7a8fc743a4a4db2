-- One row per movie per TMDB snapshot date: the movie's TMDB popularity and votes that day,
-- beside its IMDb rating and votes (IMDb's snapshot predates 2023 and does not change).
--
-- Incremental by snapshot date (dbt_project.yml): a run reads and writes only the snapshot
-- dates it is for (macros/snapshot_window.sql) and replaces each of them whole (Athena:
-- insert_overwrite of the date's Hive partition; DuckDB: delete+insert by snapshot_date). Every
-- row of a date comes from that date's snapshot, the TMDB details and the IMDb titles only, so
-- the rows a date gets do not depend on when it was built: --full-refresh gives the same table.
-- When several TMDB ids link to one IMDb title, the date's row is the one with the most TMDB
-- votes that day, then the smallest id (dim_movie applies the same rule to the latest snapshot).

{%- set dates = snapshot_dates_to_build('snapshot_date', is_partition_column=true) %}

with

snapshots as (

    select
        tmdb_id,
        snapshot_date,
        popularity,
        vote_average,
        vote_count

    from {{ ref('stg_tmdb__movie_snapshots') }}
    where language = '{{ var("tmdb_language") }}'
        and {{ array_contains('genre_ids', var('tmdb_genre_id')) }}
        {%- if is_incremental() %}
        and {{ snapshot_date_filter(dates, partition_columns=true) }}
        {%- endif %}

),

links as (

    select tmdb_id, imdb_id from {{ ref('stg_tmdb__movie_details') }}

),

claims as (

    select
        snapshots.*,
        links.imdb_id,
        row_number() over (
            partition by snapshots.snapshot_date, links.imdb_id
            order by coalesce(snapshots.vote_count, -1) desc, snapshots.tmdb_id
        ) as claim_rank

    from snapshots
    left join links
        on snapshots.tmdb_id = links.tmdb_id

),

movies as (

    -- A TMDB movie without an IMDb id is its own movie; of those sharing one, the first wins.
    select * from claims
    where imdb_id is null or claim_rank = 1

),

imdb_movies as (

    select imdb_id, average_rating, num_votes from {{ ref('stg_imdb__movies') }}

),

final as (

    select
        {{ movie_key('movies.imdb_id', 'movies.tmdb_id') }} as movie_key,
        {{ date_key('movies.snapshot_date') }} as snapshot_date_key,
        movies.tmdb_id,
        movies.imdb_id,
        movies.popularity,
        rank() over (
            partition by movies.snapshot_date
            order by movies.popularity desc nulls last
        ) as popularity_rank,
        movies.vote_average as tmdb_vote_average,
        movies.vote_count as tmdb_vote_count,
        imdb_movies.average_rating as imdb_average_rating,
        imdb_movies.num_votes as imdb_num_votes,
        -- Last: the Athena partition column.
        movies.snapshot_date

    from movies
    left join imdb_movies
        on movies.imdb_id = imdb_movies.imdb_id

)

select * from final
