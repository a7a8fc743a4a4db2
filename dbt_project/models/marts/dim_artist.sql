-- The artists credited on the movies of dim_movie. IMDb's files carry no artist id: an artist
-- is a name and a birth year (two namesakes born the same year would be one artist).

with

credits as (

    select credits.*
    from {{ ref('stg_imdb__movie_credits') }} as credits
    inner join {{ ref('dim_movie') }} as movies
        on credits.imdb_id = movies.imdb_id
    where credits.artist_name is not null

),

artists as (

    select
        {{ surrogate_key(['artist_name', 'birth_year']) }} as artist_key,
        artist_name,
        birth_year,
        max(death_year) as death_year,
        max({{ array_to_string('professions', ', ') }}) as professions,
        max({{ array_to_string('known_for_title_ids', ', ') }}) as known_for_imdb_ids,
        count(distinct imdb_id) as credited_movie_count

    from credits
    group by artist_name, birth_year

)

select * from artists
