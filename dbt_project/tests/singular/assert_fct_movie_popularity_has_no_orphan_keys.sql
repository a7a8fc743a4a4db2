-- Every row of the fact points at a movie of dim_movie and a day of dim_date.

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
