-- One row per movie per TMDB snapshot date: the movie's TMDB popularity and votes that day,
-- beside its IMDb rating and votes (IMDb's snapshot predates 2023 and does not change).

with

movies as (

    select movie_key, imdb_id, tmdb_id, imdb_average_rating, imdb_num_votes
    from {{ ref('dim_movie') }}
    where tmdb_id is not null

),

snapshots as (

    select * from {{ ref('stg_tmdb__movie_snapshots') }}
    where language = '{{ var("tmdb_language") }}'

),

final as (

    select
        movies.movie_key,
        {{ date_key('snapshots.snapshot_date') }} as snapshot_date_key,
        movies.tmdb_id,
        movies.imdb_id,
        snapshots.popularity,
        rank() over (
            partition by snapshots.snapshot_date
            order by snapshots.popularity desc nulls last
        ) as popularity_rank,
        snapshots.vote_average as tmdb_vote_average,
        snapshots.vote_count as tmdb_vote_count,
        movies.imdb_average_rating,
        movies.imdb_num_votes,
        -- Last: the Athena partition column.
        snapshots.snapshot_date

    from snapshots
    inner join movies
        on snapshots.tmdb_id = movies.tmdb_id

)

select * from final
