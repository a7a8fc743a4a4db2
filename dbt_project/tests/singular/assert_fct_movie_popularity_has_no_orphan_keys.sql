-- Every row of the fact points at a movie of dim_movie and a day of dim_date: every row of
-- every date, not only the run's. dim_movie is rebuilt each run while the fact keeps the rows
-- of earlier runs, so this is the check that a movie's key has not changed since (a TMDB
-- movie whose details now link it to another IMDb title): if it fails, run
-- `dbt build --full-refresh`, which rebuilds every date with today's keys. It is the one test
-- of a daily run that reads the whole fact, two key columns of it.

select
    fct.movie_key,
    fct.snapshot_date_key,
    movies.movie_key is null as is_movie_orphan,
    dates.date_key is null as is_date_orphan

from {{ ref('fct_movie_popularity') }} as fct
left join {{ ref('dim_movie') }} as movies
    on fct.movie_key = movies.movie_key
left join {{ ref('dim_date') }} as dates
    on fct.snapshot_date_key = dates.date_key
where movies.movie_key is null
    or dates.date_key is null
