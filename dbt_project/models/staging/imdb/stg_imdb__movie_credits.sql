with

source as (

    select * from {{ source('imdb', 'imdb_movie_credits') }}

),

renamed as (

    select
        cast(title_id as varchar) as imdb_id,
        cast(artist_name as varchar) as artist_name,
        cast(artist_category as varchar) as artist_category,
        cast(characters as varchar) as characters,
        {{ dbt.safe_cast('birth_year', 'integer') }} as birth_year,
        {{ dbt.safe_cast('death_year', 'integer') }} as death_year,
        professions,
        known_for_title_ids

    from source

)

select * from renamed
