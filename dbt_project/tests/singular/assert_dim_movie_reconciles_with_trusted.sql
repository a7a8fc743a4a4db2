-- dim_movie holds exactly the movies of the genre known to either source, counted straight from
-- the trusted tables: the distinct IMDb ids of IMDb's genre titles and of TMDB's genre movies,
-- plus the TMDB genre movies that link to no IMDb id.
--
-- The TMDB genre movies are every movie any trusted snapshot lists with the genre. A full
-- refresh (or a run without a snapshot date) reads them from every snapshot; a daily run reads
-- no history: it takes them from the TMDB movie state (int_tmdb__movie_latest_snapshots, one
-- row per movie ever listed) and checks that the state holds every movie of the run's
-- snapshot dates.

-- depends_on: {{ ref('int_tmdb__movie_latest_snapshots') }}
-- (the state is read on daily runs only; the hint keeps it a dependency whatever the run)

{%- set daily = test_window_start() is not none %}

with

imdb_ids as (

    select title_id as imdb_id
    from {{ source('imdb', 'imdb_movie_genres') }}
    where genre = '{{ var("imdb_genre") }}'

),

window_genre_movies as (

    select distinct snapshots.tmdb_id
    from {{ source('tmdb', 'tmdb_movie_snapshots') }} as snapshots
    where {{ array_contains('snapshots.genre_ids', var('tmdb_genre_id')) }}
        and snapshots.language = '{{ var("tmdb_language") }}'
        and {{ test_window_filter('snapshot_date', partition_columns=true, alias='snapshots') }}

),

tmdb_genre_movies as (

    select genre_movies.tmdb_id, details.imdb_id
    {%- if daily %}
    from {{ ref('int_tmdb__movie_latest_snapshots') }} as genre_movies
    {%- else %}
    from window_genre_movies as genre_movies
    {%- endif %}
    left join {{ source('tmdb', 'tmdb_movie_details') }} as details
        on genre_movies.tmdb_id = details.tmdb_id

),

expected as (

    select
        (
            select count(*) from (
                select imdb_id from imdb_ids
                union
                select imdb_id from tmdb_genre_movies where imdb_id is not null
            ) as linked
        )
        + (select count(*) from tmdb_genre_movies where imdb_id is null) as movie_count

),

actual as (

    select count(*) as movie_count from {{ ref('dim_movie') }}

)

select
    'dim_movie rows differ from the genre movies of the trusted tables' as problem,
    expected.movie_count as expected_movies,
    actual.movie_count as dim_movie_rows
from expected
cross join actual
where expected.movie_count <> actual.movie_count

{%- if daily %}

union all

select
    'a TMDB genre movie of the run''s snapshot dates is missing from the TMDB movie state',
    window_genre_movies.tmdb_id,
    null
from window_genre_movies
left join {{ ref('int_tmdb__movie_latest_snapshots') }} as genre_movies
    on window_genre_movies.tmdb_id = genre_movies.tmdb_id
where genre_movies.tmdb_id is null

{%- endif %}
