with

source as (

    select * from {{ source('imdb', 'imdb_movie_genres') }}

),

renamed as (

    select
        cast(title_id as varchar) as imdb_id,
        cast(genre as varchar) as genre_name

    from source

)

select * from renamed
