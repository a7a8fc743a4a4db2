-- The IMDb series of the genre (var imdb_genre). TMDB data covers movies only.

with

series as (

    select * from {{ ref('stg_imdb__series') }}

),

genre_titles as (

    select distinct imdb_id
    from {{ ref('stg_imdb__series_genres') }}
    where genre_name = '{{ var("imdb_genre") }}'

),

final as (

    select
        {{ surrogate_key(['series.imdb_id']) }} as series_key,
        series.imdb_id,
        series.primary_title as title,
        series.original_title,
        series.release_year,
        series.end_year,
        series.end_year is not null as has_ended,
        series.runtime_minutes,
        {{ array_to_string('series.genres', ', ') }} as genres,
        series.average_rating,
        series.num_votes

    from series
    inner join genre_titles
        on series.imdb_id = genre_titles.imdb_id

)

select * from final
