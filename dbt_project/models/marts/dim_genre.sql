-- The genres of both sources, each in its own terms: IMDb names its genres (in English), TMDB
-- numbers them (names per language). They are never merged by name: one row per source genre.

with

imdb_genres as (

    select distinct genre_name
    from {{ ref('stg_imdb__movie_genres') }}

),

tmdb_genre_names as (

    select genre_id, genre_name
    from {{ ref('stg_tmdb__genres') }}
    where language = '{{ var("tmdb_language") }}'

),

tmdb_genre_ids as (

    -- Ids used by the movies, even when the genre list lacks them, then the listed ones.
    select movie_genre.genre_id
    from {{ ref('int_tmdb__genre_movies') }} as tmdb_movies
    cross join unnest(tmdb_movies.genre_ids) as movie_genre (genre_id)
    union
    select genre_id from {{ ref('stg_tmdb__genres') }}

),

final as (

    select
        {{ surrogate_key(["'imdb'", 'genre_name']) }} as genre_key,
        'imdb' as genre_source,
        genre_name as genre_code,
        genre_name,
        genre_name = '{{ var("imdb_genre") }}' as is_selected_genre

    from imdb_genres

    union all

    select
        {{ surrogate_key(["'tmdb'", 'tmdb_genre_ids.genre_id']) }} as genre_key,
        'tmdb' as genre_source,
        cast(tmdb_genre_ids.genre_id as varchar) as genre_code,
        tmdb_genre_names.genre_name,
        tmdb_genre_ids.genre_id = {{ var("tmdb_genre_id") }} as is_selected_genre

    from tmdb_genre_ids
    left join tmdb_genre_names
        on tmdb_genre_ids.genre_id = tmdb_genre_names.genre_id

)

select * from final
