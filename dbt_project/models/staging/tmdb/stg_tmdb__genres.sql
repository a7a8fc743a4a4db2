with

source as (

    select * from {{ source('tmdb', 'tmdb_genres') }}

),

renamed as (

    select
        {{ dbt.safe_cast('genre_id', 'integer') }} as genre_id,
        cast(name as varchar) as genre_name,
        cast(language as varchar) as language

    from source

)

select * from renamed
