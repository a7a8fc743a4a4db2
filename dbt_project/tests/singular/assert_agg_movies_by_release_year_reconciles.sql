-- The yearly aggregate accounts for every movie with a release year, and for all its votes.

with

aggregate_totals as (

    select
        coalesce(sum(titles), 0) as titles,
        coalesce(sum(total_votes), 0) as total_votes
    from {{ ref('agg_movies__by_release_year') }}

),

movie_totals as (

    select
        count(*) as titles,
        coalesce(sum(imdb_num_votes), 0) as total_votes
    from {{ ref('dim_movie') }}
    where release_year is not null

)

select
    aggregate_totals.titles as aggregate_titles,
    movie_totals.titles as movie_titles,
    aggregate_totals.total_votes as aggregate_votes,
    movie_totals.total_votes as movie_votes
from aggregate_totals
cross join movie_totals
where aggregate_totals.titles <> movie_totals.titles
    or aggregate_totals.total_votes <> movie_totals.total_votes
