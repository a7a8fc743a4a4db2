-- One row per TMDB movie that some snapshot lists with the genre (var tmdb_genre_id): its
-- latest such snapshot row, its first snapshot date and how many snapshot dates list it.
--
-- Incremental, so that a daily run never reads the snapshot history: it reads the snapshot
-- dates of the run (macros/snapshot_window.sql) and the rows of this table for the movies they
-- list, and merges the result by tmdb_id (Athena: Iceberg MERGE; DuckDB: delete+insert).
-- A first build or --full-refresh reads every snapshot date. So does a re-run that cannot be
-- applied on top of the table: re-running a date older than the latest one built, or the latest
-- date when its new snapshot no longer lists a movie whose latest row came from it. Then every
-- movie is rebuilt from history, and a movie no snapshot lists any more is written with
-- snapshot_count 0 and deleted by the post-hook (dbt_project.yml).

{%- set dates = snapshot_dates_to_build('latest_snapshot_date') -%}
{%- set rebuild = false -%}
{%- if is_incremental() and execute and dates -%}
    {%- set latest_built = latest_date_in(this, 'latest_snapshot_date') -%}
    {%- set run_date = run_snapshot_date() -%}
    {%- if run_date is not none and run_date < latest_built[:10] -%}
        {%- set rebuild = true -%}
    {%- elif run_date is not none and run_date == latest_built[:10] -%}
        {%- set dropped_sql -%}
            select count(*)
            from {{ this }} as built
            where built.latest_snapshot_date = date '{{ run_date }}'
                and not exists (
                    select 1
                    from {{ ref('stg_tmdb__movie_snapshots') }} as snapshots
                    where snapshots.tmdb_id = built.tmdb_id
                        and snapshots.language = '{{ var("tmdb_language") }}'
                        and {{ array_contains('snapshots.genre_ids', var('tmdb_genre_id')) }}
                        and {{ snapshot_date_filter([run_date], partition_columns=true, alias='snapshots') }}
                )
        {%- endset -%}
        {%- set dropped = run_query(dropped_sql).columns[0].values()[0] -%}
        {%- set rebuild = dropped > 0 -%}
    {%- endif -%}
    {%- if rebuild -%}
        {%- do log(this.identifier ~ ': re-running ' ~ run_date ~ ' changes what earlier dates '
                   ~ 'left; rebuilding every movie from the snapshot history', info=true) -%}
    {%- endif -%}
{%- endif -%}
{%- set applies_on_top = is_incremental() and not rebuild %}

with

snapshots as (

    select
        tmdb_id,
        snapshot_date,
        title,
        original_title,
        original_language,
        overview,
        release_date,
        genre_ids,
        is_adult,
        popularity,
        vote_average,
        vote_count

    from {{ ref('stg_tmdb__movie_snapshots') }}
    where language = '{{ var("tmdb_language") }}'
        and {{ array_contains('genre_ids', var('tmdb_genre_id')) }}
        {%- if applies_on_top %}
        and {{ snapshot_date_filter(dates, partition_columns=true) }}
        {%- endif %}

),

ranked as (

    select
        snapshots.*,
        row_number() over (partition by tmdb_id order by snapshot_date desc) as recency,
        count(*) over (partition by tmdb_id) as dates_read,
        min(snapshot_date) over (partition by tmdb_id) as first_date_read

    from snapshots

),

latest_read as (

    select * from ranked
    where recency = 1

),

{%- if applies_on_top %}

previous as (

    -- What the table holds for the movies the run's dates list. The run's dates all come
    -- after the movie's latest date, except the run's own date on a re-run, which the table
    -- counted already when it is the movie's latest date.
    select
        built.tmdb_id,
        built.first_snapshot_date,
        built.latest_snapshot_date,
        built.snapshot_count

    from {{ this }} as built
    inner join latest_read
        on built.tmdb_id = latest_read.tmdb_id

),

{%- endif %}

merged as (

    select
        latest_read.tmdb_id,
        latest_read.title,
        latest_read.original_title,
        latest_read.original_language,
        latest_read.overview,
        latest_read.release_date,
        latest_read.genre_ids,
        latest_read.is_adult,
        latest_read.popularity,
        latest_read.vote_average,
        latest_read.vote_count,
        {%- if applies_on_top %}
        case
            when previous.first_snapshot_date < latest_read.first_date_read
                then previous.first_snapshot_date
            else latest_read.first_date_read
        end as first_snapshot_date,
        latest_read.snapshot_date as latest_snapshot_date,
        coalesce(previous.snapshot_count, 0) + latest_read.dates_read
            - case
                when previous.latest_snapshot_date >= latest_read.first_date_read then 1 else 0
            end as snapshot_count
        {%- else %}
        latest_read.first_date_read as first_snapshot_date,
        latest_read.snapshot_date as latest_snapshot_date,
        latest_read.dates_read as snapshot_count
        {%- endif %}

    from latest_read
    {%- if applies_on_top %}
    left join previous
        on latest_read.tmdb_id = previous.tmdb_id
    {%- endif %}

)

{%- if is_incremental() and rebuild %},

gone as (

    -- Movies the table holds that no snapshot lists any more: written with snapshot_count 0,
    -- deleted by the post-hook.
    select
        built.tmdb_id,
        built.title,
        built.original_title,
        built.original_language,
        built.overview,
        built.release_date,
        built.genre_ids,
        built.is_adult,
        built.popularity,
        built.vote_average,
        built.vote_count,
        built.first_snapshot_date,
        built.latest_snapshot_date,
        cast(0 as bigint) as snapshot_count

    from {{ this }} as built
    left join latest_read
        on built.tmdb_id = latest_read.tmdb_id
    where latest_read.tmdb_id is null

)

select * from merged
union all
select * from gone

{%- else %}

select * from merged

{%- endif %}
