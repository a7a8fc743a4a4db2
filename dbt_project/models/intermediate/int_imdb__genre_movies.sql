-- The IMDb movies of the genre (var imdb_genre): one row per IMDb title.

with

movies as (

    select * from {{ ref('stg_imdb__movies') }}

),

genre_titles as (

    select distinct imdb_id
    from {{ ref('stg_imdb__movie_genres') }}
    where genre_name = '{{ var("imdb_genre") }}'

),

genre_movies as (

    select movies.*
    from movies
    inner join genre_titles
        on movies.imdb_id = genre_titles.imdb_id

)

select * from genre_movies
