-- The one-row-per-movie table for BI: dim_movie with its latest TMDB snapshot, its genres of
-- both sources and its credited artists, flattened into plain columns.

with

movies as (

    select * from {{ ref('dim_movie') }}

),

latest_popularity as (

    -- The movie's latest snapshot, from the incrementally built TMDB movie state: one row per
    -- TMDB movie, so no snapshot history is read here.
    select
        tmdb_id,
        latest_snapshot_date as snapshot_date,
        latest_popularity as popularity,
        latest_vote_average as tmdb_vote_average,
        latest_vote_count as tmdb_vote_count,
        snapshot_count,
        first_snapshot_date

    from {{ ref('int_tmdb__genre_movies') }}

),

genres as (

    select
        bridge.movie_key,
        {{ string_agg_distinct(
            "case when genres.genre_source = 'imdb' then genres.genre_name end", ', '
        ) }} as imdb_genres,
        {{ string_agg_distinct(
            "case when genres.genre_source = 'tmdb' then genres.genre_name end", ', '
        ) }} as tmdb_genres

    from {{ ref('bridge_movie_genre') }} as bridge
    inner join {{ ref('dim_genre') }} as genres
        on bridge.genre_key = genres.genre_key
    group by bridge.movie_key

),

artists as (

    select
        bridge.movie_key,
        count(distinct bridge.artist_key) as artist_count,
        {{ string_agg_distinct('artists.artist_name', ', ') }} as artist_names

    from {{ ref('bridge_movie_artist') }} as bridge
    inner join {{ ref('dim_artist') }} as artists
        on bridge.artist_key = artists.artist_key
    group by bridge.movie_key

),

final as (

    select
        movies.movie_key,
        movies.imdb_id,
        movies.tmdb_id,
        movies.title,
        movies.imdb_primary_title,
        movies.imdb_original_title,
        movies.tmdb_title,
        movies.tmdb_overview,
        movies.original_language,
        movies.release_year,
        movies.release_date,
        release_dates.month_name as release_month_name,
        release_dates.day_name as release_day_name,
        movies.runtime_minutes,
        genres.imdb_genres,
        genres.tmdb_genres,
        coalesce(artists.artist_count, 0) as artist_count,
        artists.artist_names,
        movies.imdb_average_rating,
        movies.imdb_num_votes,
        latest_popularity.popularity as latest_popularity,
        latest_popularity.tmdb_vote_average as latest_tmdb_vote_average,
        latest_popularity.tmdb_vote_count as latest_tmdb_vote_count,
        latest_popularity.snapshot_date as latest_snapshot_date,
        latest_popularity.first_snapshot_date,
        coalesce(latest_popularity.snapshot_count, 0) as snapshot_count,
        movies.tmdb_budget,
        movies.tmdb_revenue,
        movies.is_adult,
        movies.is_known_to_imdb,
        movies.is_known_to_tmdb,
        movies.is_genre_in_imdb,
        movies.is_genre_in_tmdb

    from movies
    left join latest_popularity
        on movies.tmdb_id = latest_popularity.tmdb_id
    left join genres
        on movies.movie_key = genres.movie_key
    left join artists
        on movies.movie_key = artists.movie_key
    left join {{ ref('dim_date') }} as release_dates
        on movies.release_date_key = release_dates.date_key

)

select * from final
