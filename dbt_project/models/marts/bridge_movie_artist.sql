-- One row per movie × artist × category (actor, actress, ...), from the IMDb credits.

with

movies as (

    select movie_key, imdb_id from {{ ref('dim_movie') }}

),

credits as (

    select * from {{ ref('stg_imdb__movie_credits') }}
    where artist_name is not null

),

final as (

    select
        movies.movie_key,
        {{ surrogate_key(['credits.artist_name', 'credits.birth_year']) }} as artist_key,
        credits.artist_category,
        {{ string_agg_distinct('credits.characters', ' / ') }} as characters

    from movies
    inner join credits
        on movies.imdb_id = credits.imdb_id
    group by 1, 2, 3

)

select * from final
