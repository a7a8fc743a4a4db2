-- Every TMDB release date, every release year and every snapshot date has its day (or, for a
-- year, its 1 January) in dim_date.

with

needed_dates as (

    select release_date as needed_date, 'movie release date' as reason
    from {{ ref('dim_movie') }}
    where release_date is not null

    union all

    select {{ date_from_parts('release_year', 1, 1) }}, 'movie release year'
    from {{ ref('dim_movie') }}
    where release_year is not null

    union all

    select {{ date_from_parts('release_year', 1, 1) }}, 'series release year'
    from {{ ref('dim_series') }}
    where release_year is not null

    union all

    select distinct snapshot_date, 'snapshot date'
    from {{ ref('fct_movie_popularity') }}
    -- the run's snapshot dates (all of them on a full refresh): dim_date only grows
    where {{ test_window_filter('snapshot_date') }}

)

select needed_dates.needed_date, needed_dates.reason
from needed_dates
left join {{ ref('dim_date') }} as dates
    on needed_dates.needed_date = dates.date_day
where dates.date_day is null
