-- Every TMDB movie of the genre whose IMDb id is an IMDb movie is matched in dim_movie: there is
-- exactly one dim_movie row with that IMDb id, it knows both sources, and it carries this TMDB
-- id (or, when several TMDB ids share the IMDb id, one of them and says so). Titles play no
-- part: a pt-BR title that differs from the IMDb title must still match.
-- Checked from the trusted tables, not from the models that do the matching, for the TMDB
-- movies of the run's snapshot dates (every date on a full refresh).

with

tmdb_genre_ids as (

    select distinct tmdb_id
    from {{ source('tmdb', 'tmdb_movie_snapshots') }}
    where {{ array_contains('genre_ids', var('tmdb_genre_id')) }}
        and language = '{{ var("tmdb_language") }}'
        -- the run's snapshot dates (all of them on a full refresh)
        and {{ test_window_filter('snapshot_date', partition_columns=true) }}

),

tmdb_movies as (

    select details.tmdb_id, details.imdb_id
    from {{ source('tmdb', 'tmdb_movie_details') }} as details
    inner join tmdb_genre_ids
        on details.tmdb_id = tmdb_genre_ids.tmdb_id
    inner join {{ source('imdb', 'imdb_movies') }} as imdb_movies
        on details.imdb_id = imdb_movies.title_id

),

dim_rows as (

    select
        tmdb_movies.tmdb_id,
        tmdb_movies.imdb_id,
        count(movies.movie_key) as dim_movie_rows,
        sum(
            case
                when movies.is_known_to_imdb
                    and movies.is_known_to_tmdb
                    and (movies.tmdb_id = tmdb_movies.tmdb_id or movies.tmdb_candidate_count > 1)
                then 1 else 0
            end
        ) as matched_rows

    from tmdb_movies
    left join {{ ref('dim_movie') }} as movies
        on tmdb_movies.imdb_id = movies.imdb_id
    group by tmdb_movies.tmdb_id, tmdb_movies.imdb_id

)

select * from dim_rows
where dim_movie_rows <> 1 or matched_rows <> 1
