with

source as (

    select * from {{ source('imdb', 'imdb_series') }}

),

renamed as (

    select
        cast(title_id as varchar) as imdb_id,
        cast(primary_title as varchar) as primary_title,
        cast(original_title as varchar) as original_title,
        {{ dbt.safe_cast('release_year', 'integer') }} as release_year,
        {{ dbt.safe_cast('end_year', 'integer') }} as end_year,
        {{ dbt.safe_cast('runtime_minutes', 'integer') }} as runtime_minutes,
        genres,
        {{ dbt.safe_cast('average_rating', 'double') }} as average_rating,
        {{ dbt.safe_cast('num_votes', 'bigint') }} as num_votes

    from source

)

select * from renamed
