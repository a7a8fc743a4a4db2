with

matched as (

    select * from {{ ref('int_movies__matched_to_tmdb') }}

),

imdb_movies as (

    select * from {{ ref('stg_imdb__movies') }}

),

tmdb_movies as (

    select * from {{ ref('int_tmdb__genre_movies') }}

),

final as (

    select
        -- Keyed by the IMDb id when there is one, else by the TMDB id.
        {{ movie_key('matched.imdb_id', 'matched.tmdb_id') }} as movie_key,
        matched.imdb_id,
        matched.tmdb_id,
        coalesce(imdb_movies.primary_title, tmdb_movies.title) as title,
        imdb_movies.primary_title as imdb_primary_title,
        imdb_movies.original_title as imdb_original_title,
        tmdb_movies.title as tmdb_title,
        tmdb_movies.original_title as tmdb_original_title,
        tmdb_movies.overview as tmdb_overview,
        tmdb_movies.original_language,
        coalesce(imdb_movies.release_year, year(tmdb_movies.release_date)) as release_year,
        tmdb_movies.release_date,
        {{ date_key('tmdb_movies.release_date') }} as release_date_key,
        coalesce(imdb_movies.runtime_minutes, tmdb_movies.runtime_minutes) as runtime_minutes,
        imdb_movies.average_rating as imdb_average_rating,
        imdb_movies.num_votes as imdb_num_votes,
        tmdb_movies.budget as tmdb_budget,
        tmdb_movies.revenue as tmdb_revenue,
        tmdb_movies.is_adult,
        matched.is_known_to_imdb,
        matched.is_known_to_tmdb,
        matched.is_genre_in_imdb,
        matched.is_genre_in_tmdb,
        matched.tmdb_candidate_count

    from matched
    left join imdb_movies
        on matched.imdb_id = imdb_movies.imdb_id
    left join tmdb_movies
        on matched.tmdb_id = tmdb_movies.tmdb_id

)

select * from final
