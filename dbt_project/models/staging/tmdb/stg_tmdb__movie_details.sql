with

source as (

    select * from {{ source('tmdb', 'tmdb_movie_details') }}

),

renamed as (

    select
        {{ dbt.safe_cast('tmdb_id', 'bigint') }} as tmdb_id,
        -- The link to IMDb: the trusted job already turned TMDB's "" into null.
        cast(imdb_id as varchar) as imdb_id,
        cast(title as varchar) as title,
        cast(original_title as varchar) as original_title,
        {{ dbt.safe_cast('runtime_minutes', 'integer') }} as runtime_minutes,
        {{ dbt.safe_cast('budget', 'bigint') }} as budget,
        {{ dbt.safe_cast('revenue', 'bigint') }} as revenue,
        cast(release_date as date) as release_date,
        genre_ids,
        cast(language as varchar) as language,
        cast(fetched_at as timestamp) as fetched_at

    from source

)

select * from renamed
