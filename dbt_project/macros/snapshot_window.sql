{#-
    The snapshot window: which TMDB snapshot dates a run builds and tests.

    The refined layer grows by one snapshot date a day. The incremental models
    (int_tmdb__movie_latest_snapshots, fct_movie_popularity) read only the snapshot dates the
    run is for, so a daily run costs the same after a year as on day one:

    - the run's snapshot date is the var `snapshot_date` (`--vars '{snapshot_date: 2024-03-01}'`),
      else the environment variable RUN_DATE (the date every stage of a daily run reads), else
      none;
    - an incremental run builds every snapshot date after the latest one its table holds, up to
      the run's date (today, UTC, when there is none), plus the run's date itself when the table
      holds it already: a re-run replaces that date;
    - a first build and `--full-refresh` build every snapshot date.

    Data tests on the snapshot-grained tables read the same window: from the run's date on, or
    everything on a full refresh or when the run names no date (see get_where_subquery below).
-#}


{#- The run's snapshot date as 'YYYY-MM-DD', or none: var snapshot_date, else env RUN_DATE. -#}
{% macro run_snapshot_date() -%}
    {%- set value = var('snapshot_date', none) or env_var('RUN_DATE', '') -%}
    {%- if not value -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = value | string | trim -%}
    {%- set parsed = none -%}
    {%- if modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {%- set parsed = modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
    {%- endif -%}
    {%- if parsed is none -%}
        {{ exceptions.raise_compiler_error(
            "The run's snapshot date '" ~ text ~ "' (var snapshot_date, else the RUN_DATE "
            ~ "environment variable) is not a YYYY-MM-DD date. Pass e.g. "
            ~ "--vars '{snapshot_date: 2024-03-01}', or unset both to build every new date.") }}
    {%- endif -%}
    {{ return(parsed.strftime('%Y-%m-%d')) }}
{%- endmacro %}


{#- The latest value of a date column of an existing relation, as 'YYYY-MM-DD' (none when the
    relation is empty or the query returns no row). Athena reads a partition column's values
    from the table's partition list (`"<table>$partitions"`), not from its data; DuckDB reads
    the column (a table of its own file, not parquet files: a scan of one date column). -#}
{% macro latest_date_in(relation, column, is_partition_column=false) -%}
    {{ return(adapter.dispatch('latest_date_in', 'movie_lake')(relation, column, is_partition_column)) }}
{%- endmacro %}

{% macro default__latest_date_in(relation, column, is_partition_column) -%}
    {%- set result = run_query('select cast(max(' ~ column ~ ') as varchar) from ' ~ relation) -%}
    {#- No row at all (a catalogue that answers with an empty result) reads as an empty table. -#}
    {%- set value = result.rows[0][0] if result.rows | length > 0 else none -%}
    {{ return(value | string if value is not none else none) }}
{%- endmacro %}

{% macro athena__latest_date_in(relation, column, is_partition_column) -%}
    {%- set source = relation -%}
    {%- if is_partition_column -%}
        {%- set source = relation.incorporate(path={'identifier': relation.identifier ~ '$partitions'}) -%}
    {%- endif -%}
    {{ return(default__latest_date_in(source, column, false)) }}
{%- endmacro %}


{#- The snapshot dates an incremental run of `this` builds, as a sorted list of 'YYYY-MM-DD'
    strings; none to build every date (a first build, a full refresh, an empty table).
    `column` is the date column of `this` whose latest value is the latest date built. -#}
{% macro snapshot_dates_to_build(column='snapshot_date', is_partition_column=false) -%}
    {%- if not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set latest = latest_date_in(this, column, is_partition_column) -%}
    {%- if latest is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set strptime = modules.datetime.datetime.strptime -%}
    {%- set latest_day = strptime(latest[:10], '%Y-%m-%d').date() -%}
    {%- set run_date = run_snapshot_date() -%}
    {%- if run_date is none -%}
        {%- set last_day = run_started_at.date() -%}
    {%- else -%}
        {%- set last_day = strptime(run_date, '%Y-%m-%d').date() -%}
    {%- endif -%}
    {%- set dates = [] -%}
    {%- if last_day <= latest_day -%}
        {%- if run_date is not none -%}
            {%- do dates.append(run_date) -%}
        {%- endif -%}
    {%- else -%}
        {%- for offset in range(1, (last_day - latest_day).days + 1) -%}
            {%- do dates.append((latest_day + modules.datetime.timedelta(days=offset)).strftime('%Y-%m-%d')) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do log(this.identifier ~ ': latest snapshot date built ' ~ latest_day ~ '; building '
               ~ (dates | join(', ') if dates else 'no date'), info=true) -%}
    {{ return(dates) }}
{%- endmacro %}


{#- A predicate keeping the rows of `dates` (a list from snapshot_dates_to_build; none keeps
    every row). With partition_columns, it also names the trusted snapshots' Hive partitions
    (year/month/day strings), so that Athena and DuckDB read only those partitions. `alias`
    qualifies every column (a table alias of the query). -#}
{% macro snapshot_date_filter(dates, column='snapshot_date', partition_columns=false, alias=none) -%}
    {%- set qualifier = (alias ~ '.') if alias else '' -%}
    {%- if dates is none -%}
        true
    {%- elif dates | length == 0 -%}
        false
    {%- else -%}
        {%- set literals = [] -%}
        {%- for day in dates -%}
            {%- do literals.append("date '" ~ day ~ "'") -%}
        {%- endfor -%}
        {{ qualifier }}{{ column }} in ({{ literals | join(', ') }})
        {%- if partition_columns -%}
            {%- for part, start, stop in [('year', 0, 4), ('month', 5, 7), ('day', 8, 10)] -%}
                {%- set values = [] -%}
                {%- for day in dates -%}
                    {%- if ("'" ~ day[start:stop] ~ "'") not in values -%}
                        {%- do values.append("'" ~ day[start:stop] ~ "'") -%}
                    {%- endif -%}
                {%- endfor %} and {{ qualifier }}{{ part }} in ({{ values | join(', ') }})
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- The first snapshot date the data tests of this run check, as 'YYYY-MM-DD', or none to check
    every date: a full refresh and a run without a date check everything. -#}
{% macro test_window_start() -%}
    {%- if flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(run_snapshot_date()) }}
{%- endmacro %}


{#- The predicate of the data-test window on `column` (true when the tests check every date).
    With partition_columns, also a predicate on the year partition, so the trusted snapshots'
    older years are not read. `alias` qualifies the columns (a table alias of the query). -#}
{% macro test_window_filter(column='snapshot_date', partition_columns=false, alias=none) -%}
    {%- set qualifier = (alias ~ '.') if alias else '' -%}
    {%- set start = test_window_start() -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ qualifier }}{{ column }} >= date '{{ start }}'
        {%- if partition_columns %} and {{ qualifier }}year >= '{{ start[:4] }}'{% endif -%}
    {%- endif -%}
{%- endmacro %}


{#- Placeholders a data test's `where` (or row_count_matches' compare_where) may hold, expanded
    when the test runs: __snapshot_window__ on a snapshot_date column, and
    __snapshot_partition_window__ on the trusted snapshots (snapshot_date and year partition). -#}
{% macro expand_test_window(where) -%}
    {%- set expanded = where
        | replace('__snapshot_partition_window__', test_window_filter('snapshot_date', true))
        | replace('__snapshot_window__', test_window_filter('snapshot_date')) -%}
    {{ return(expanded) }}
{%- endmacro %}


{#- dbt's own get_where_subquery (the `where` config of data tests), with the placeholders above
    expanded at run time rather than when the project is parsed. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ expand_test_window(where) }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
