-- dim_movie holds exactly the movies of the genre known to either source, counted straight from
-- the trusted tables: the distinct IMDb ids of IMDb's genre titles and of TMDB's genre movies,
-- plus the TMDB genre movies that link to no IMDb id.

with

imdb_ids as (

    select title_id as imdb_id
    from {{ source('imdb', 'imdb_movie_genres') }}
    where genre = '{{ var("imdb_genre") }}'

),

tmdb_genre_movies as (

    select distinct snapshots.tmdb_id, details.imdb_id
    from {{ source('tmdb', 'tmdb_movie_snapshots') }} as snapshots
    left join {{ source('tmdb', 'tmdb_movie_details') }} as details
        on snapshots.tmdb_id = details.tmdb_id
    where {{ array_contains('snapshots.genre_ids', var('tmdb_genre_id')) }}
        and snapshots.language = '{{ var("tmdb_language") }}'

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
    expected.movie_count as expected_movies,
    actual.movie_count as dim_movie_rows
from expected
cross join actual
where expected.movie_count <> actual.movie_count
