-- The movies of the genre known to either source, matched by IMDb id only (never by title):
-- one row per movie. An IMDb title of the genre and a TMDB movie of the genre whose details
-- link it to that title become one row; each side's other movies stay single-source rows.
-- IMDb facts come from every IMDb movie, so a TMDB movie of the genre whose IMDb title is not
-- tagged with the genre on IMDb still gets them.
--
-- Two TMDB ids can link to the same IMDb id (duplicates on TMDB). The movie keeps one of
-- them: the one with the most TMDB votes in its latest snapshot, then the smallest TMDB id.
-- tmdb_candidate_count says how many claimed the title.

with

imdb_genre_movies as (

    select imdb_id from {{ ref('int_imdb__genre_movies') }}

),

imdb_movies as (

    select imdb_id from {{ ref('stg_imdb__movies') }}

),

tmdb_genre_movies as (

    select tmdb_id, imdb_id, latest_vote_count
    from {{ ref('int_tmdb__genre_movies') }}

),

tmdb_claims as (

    select
        tmdb_id,
        imdb_id,
        row_number() over (
            partition by imdb_id
            order by coalesce(latest_vote_count, -1) desc, tmdb_id
        ) as claim_rank,
        count(*) over (partition by imdb_id) as candidate_count

    from tmdb_genre_movies

),

tmdb_side as (

    -- A TMDB movie without an IMDb id is its own movie; of those sharing one, the first wins.
    select
        tmdb_id,
        imdb_id,
        case when imdb_id is null then 1 else candidate_count end as candidate_count

    from tmdb_claims
    where imdb_id is null or claim_rank = 1

),

matched as (

    select
        coalesce(imdb_genre_movies.imdb_id, tmdb_side.imdb_id) as imdb_id,
        tmdb_side.tmdb_id,
        imdb_genre_movies.imdb_id is not null as is_genre_in_imdb,
        tmdb_side.tmdb_id is not null as is_genre_in_tmdb,
        coalesce(tmdb_side.candidate_count, 0) as tmdb_candidate_count

    from imdb_genre_movies
    full outer join tmdb_side
        on imdb_genre_movies.imdb_id = tmdb_side.imdb_id

),

final as (

    select
        matched.imdb_id,
        matched.tmdb_id,
        imdb_movies.imdb_id is not null as is_known_to_imdb,
        matched.tmdb_id is not null as is_known_to_tmdb,
        matched.is_genre_in_imdb,
        matched.is_genre_in_tmdb,
        matched.tmdb_candidate_count

    from matched
    left join imdb_movies
        on matched.imdb_id = imdb_movies.imdb_id

)

select * from final
