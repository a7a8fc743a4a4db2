-- One row per release year: how many movies of the genre, their average IMDb rating and total
-- IMDb votes, and the year's most popular (latest TMDB popularity) and most voted (IMDb votes)
-- movie. Ties are broken deterministically: by the other measure, then title, then movie key.

with

movies as (

    select
        movie_key,
        title,
        release_year,
        imdb_average_rating,
        imdb_num_votes,
        latest_popularity,
        latest_tmdb_vote_count,
        is_known_to_tmdb

    from {{ ref('rpt_movies_wide') }}
    where release_year is not null

),

yearly as (

    select
        release_year,
        count(*) as titles,
        sum(case when is_known_to_tmdb then 1 else 0 end) as titles_on_tmdb,
        count(imdb_average_rating) as rated_titles,
        avg(imdb_average_rating) as average_rating,
        coalesce(sum(imdb_num_votes), 0) as total_votes

    from movies
    group by release_year

),

by_popularity as (

    select
        release_year,
        movie_key,
        title,
        latest_popularity,
        row_number() over (
            partition by release_year
            order by
                latest_popularity desc,
                coalesce(imdb_num_votes, -1) desc,
                title,
                movie_key
        ) as popularity_rank

    from movies
    where latest_popularity is not null

),

by_votes as (

    select
        release_year,
        movie_key,
        title,
        imdb_num_votes,
        row_number() over (
            partition by release_year
            order by
                imdb_num_votes desc,
                coalesce(latest_popularity, -1) desc,
                title,
                movie_key
        ) as votes_rank

    from movies
    where imdb_num_votes is not null

),

final as (

    select
        yearly.release_year,
        row_number() over (
            order by yearly.total_votes desc, yearly.titles desc, yearly.release_year desc
        ) as release_year_rank,
        yearly.titles,
        yearly.titles_on_tmdb,
        {{ divide('yearly.titles_on_tmdb', 'yearly.titles') }} as share_on_tmdb,
        yearly.rated_titles,
        yearly.average_rating,
        yearly.total_votes,
        most_popular.movie_key as most_popular_movie_key,
        most_popular.title as most_popular_title,
        most_popular.latest_popularity as most_popular_popularity,
        most_voted.movie_key as most_voted_movie_key,
        most_voted.title as most_voted_title,
        most_voted.imdb_num_votes as most_voted_votes

    from yearly
    left join by_popularity as most_popular
        on yearly.release_year = most_popular.release_year
        and most_popular.popularity_rank = 1
    left join by_votes as most_voted
        on yearly.release_year = most_voted.release_year
        and most_voted.votes_rank = 1

)

select * from final
