with

source as (

    select * from {{ source('tmdb', 'tmdb_movie_snapshots') }}

),

renamed as (

    -- The year=/month=/day= Hive partition columns (zero-padded strings) repeat snapshot_date;
    -- they are kept, last, so that a query of some dates can name their partitions.
    select
        {{ dbt.safe_cast('tmdb_id', 'bigint') }} as tmdb_id,
        cast(snapshot_date as date) as snapshot_date,
        cast(title as varchar) as title,
        cast(original_title as varchar) as original_title,
        cast(original_language as varchar) as original_language,
        cast(overview as varchar) as overview,
        {{ dbt.safe_cast('popularity', 'double') }} as popularity,
        {{ dbt.safe_cast('vote_average', 'double') }} as vote_average,
        {{ dbt.safe_cast('vote_count', 'bigint') }} as vote_count,
        cast(release_date as date) as release_date,
        genre_ids,
        cast(adult as boolean) as is_adult,
        cast(language as varchar) as language,
        year,
        month,
        day

    from source

)

select * from renamed
