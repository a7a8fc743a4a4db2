-- A daily calendar from 1 January of the earliest year any movie or series of the genre was
-- released to 31 December of the latest release or snapshot year. IMDb gives release years
-- only, TMDB full release dates, the snapshots their dates: every one of them falls inside.

with

years as (

    select release_year as calendar_year from {{ ref('dim_movie') }}
    union all
    select year(release_date) from {{ ref('dim_movie') }}
    union all
    select release_year from {{ ref('dim_series') }}
    union all
    select end_year from {{ ref('dim_series') }}
    union all
    -- Every snapshot date lies between a movie's first and latest one: no history is read.
    select year(first_snapshot_date) from {{ ref('int_tmdb__movie_latest_snapshots') }}
    union all
    select year(latest_snapshot_date) from {{ ref('int_tmdb__movie_latest_snapshots') }}

),

bounds as (

    select
        min(calendar_year) as first_year,
        max(calendar_year) as last_year

    from years

),

calendar_years as (

    select calendar_year.calendar_year
    from bounds
    cross join unnest({{ integer_sequence('bounds.first_year', 'bounds.last_year') }})
        as calendar_year (calendar_year)

),

calendar_days as (

    -- One year at a time: Athena's sequence() holds at most 10,000 elements.
    select cast(calendar_day.date_day as date) as date_day
    from calendar_years
    cross join unnest({{ date_sequence(
        date_from_parts('calendar_years.calendar_year', 1, 1),
        date_from_parts('calendar_years.calendar_year', 12, 31),
    ) }}) as calendar_day (date_day)

),

final as (

    select
        {{ date_key('date_day') }} as date_key,
        date_day,
        cast(year(date_day) as integer) as calendar_year,
        cast(quarter(date_day) as integer) as calendar_quarter,
        cast(month(date_day) as integer) as month_of_year,
        {{ month_name('date_day') }} as month_name,
        cast(day(date_day) as integer) as day_of_month,
        cast({{ iso_day_of_week('date_day') }} as integer) as day_of_week,
        {{ day_name('date_day') }} as day_name,
        cast(week(date_day) as integer) as iso_week_of_year,
        {{ iso_day_of_week('date_day') }} >= 6 as is_weekend,
        {{ date_trunc_to_date('month', 'date_day') }} as month_start_date,
        {{ date_trunc_to_date('year', 'date_day') }} as year_start_date

    from calendar_days

)

select * from final
