-- One row per movie × genre of either source: the IMDb genres of the movie's IMDb title and
-- the TMDB genre ids of its TMDB movie (latest snapshot).

with

movies as (

    select movie_key, imdb_id, tmdb_id from {{ ref('dim_movie') }}

),

imdb_movie_genres as (

    select
        movies.movie_key,
        {{ surrogate_key(["'imdb'", 'title_genres.genre_name']) }} as genre_key,
        'imdb' as genre_source

    from movies
    inner join {{ ref('stg_imdb__movie_genres') }} as title_genres
        on movies.imdb_id = title_genres.imdb_id

),

tmdb_movie_genres as (

    select
        movies.movie_key,
        {{ surrogate_key(["'tmdb'", 'movie_genre.genre_id']) }} as genre_key,
        'tmdb' as genre_source

    from movies
    inner join {{ ref('int_tmdb__genre_movies') }} as tmdb_movies
        on movies.tmdb_id = tmdb_movies.tmdb_id
    cross join unnest(tmdb_movies.genre_ids) as movie_genre (genre_id)

),

final as (

    select movie_key, genre_key, genre_source from imdb_movie_genres
    union
    select movie_key, genre_key, genre_source from tmdb_movie_genres

)

select * from final
