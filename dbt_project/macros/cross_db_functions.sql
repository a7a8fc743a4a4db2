{#-
    Engine differences between Athena (Trino; the default__ versions) and DuckDB (duckdb__).
    Models call these macros and never branch on the engine themselves. Each macro says
    which trap it avoids.
-#}


{#- dbt.safe_cast is a plain `cast` on DuckDB (a bad value fails the query) but `try_cast`
    on Athena. This override of dbt's own macro makes DuckDB match: bad values become null. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}


{#- true when `array` holds `value`. Trino: contains(); DuckDB: list_contains(). -#}
{% macro array_contains(array, value) -%}
    {{ return(adapter.dispatch('array_contains', 'movie_lake')(array, value)) }}
{%- endmacro %}

{% macro default__array_contains(array, value) -%}
    contains({{ array }}, {{ value }})
{%- endmacro %}

{% macro duckdb__array_contains(array, value) -%}
    list_contains({{ array }}, {{ value }})
{%- endmacro %}


{#- The elements of a string array joined by `separator`, nulls left out.
    Trino: array_join(); DuckDB: array_to_string(). -#}
{% macro array_to_string(array, separator) -%}
    {{ return(adapter.dispatch('array_to_string', 'movie_lake')(array, separator)) }}
{%- endmacro %}

{% macro default__array_to_string(array, separator) -%}
    array_join({{ array }}, '{{ separator }}')
{%- endmacro %}

{% macro duckdb__array_to_string(array, separator) -%}
    array_to_string({{ array }}, '{{ separator }}')
{%- endmacro %}


{#- Aggregate: the distinct non-null values of `expression`, sorted, joined by `separator`.
    Trino has no ordered string_agg (and listagg has no DISTINCT); DuckDB has string_agg. -#}
{% macro string_agg_distinct(expression, separator) -%}
    {{ return(adapter.dispatch('string_agg_distinct', 'movie_lake')(expression, separator)) }}
{%- endmacro %}

{% macro default__string_agg_distinct(expression, separator) -%}
    array_join(array_sort(array_distinct(array_agg({{ expression }}) filter (where {{ expression }} is not null))), '{{ separator }}')
{%- endmacro %}

{% macro duckdb__string_agg_distinct(expression, separator) -%}
    string_agg(distinct {{ expression }}, '{{ separator }}' order by {{ expression }})
{%- endmacro %}


{#- A date from integer year, month and day expressions. Trino has no make_date. -#}
{% macro date_from_parts(year, month, day) -%}
    {{ return(adapter.dispatch('date_from_parts', 'movie_lake')(year, month, day)) }}
{%- endmacro %}

{% macro default__date_from_parts(year, month, day) -%}
    date(format('%04d-%02d-%02d', {{ year }}, {{ month }}, {{ day }}))
{%- endmacro %}

{% macro duckdb__date_from_parts(year, month, day) -%}
    make_date(cast({{ year }} as bigint), cast({{ month }} as bigint), cast({{ day }} as bigint))
{%- endmacro %}


{#- An array of every date from `start_date` to `end_date`, both included. Trino's sequence()
    holds at most 10,000 elements: call it on one year at a time. DuckDB's generate_series over
    dates yields timestamps: cast the unnested element to date. -#}
{% macro date_sequence(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_sequence', 'movie_lake')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_sequence(start_date, end_date) -%}
    sequence({{ start_date }}, {{ end_date }}, interval '1' day)
{%- endmacro %}

{% macro duckdb__date_sequence(start_date, end_date) -%}
    generate_series({{ start_date }}, {{ end_date }}, interval 1 day)
{%- endmacro %}


{#- An array of the integers from `start` to `stop`, both included. -#}
{% macro integer_sequence(start, stop) -%}
    {{ return(adapter.dispatch('integer_sequence', 'movie_lake')(start, stop)) }}
{%- endmacro %}

{% macro default__integer_sequence(start, stop) -%}
    sequence({{ start }}, {{ stop }})
{%- endmacro %}

{% macro duckdb__integer_sequence(start, stop) -%}
    generate_series({{ start }}, {{ stop }})
{%- endmacro %}


{#- The first day of the `datepart` holding a date, as a date. On DuckDB date_trunc of a date
    returns a timestamp, which would leak into joins and partition keys. -#}
{% macro date_trunc_to_date(datepart, date) -%}
    {{ return(adapter.dispatch('date_trunc_to_date', 'movie_lake')(datepart, date)) }}
{%- endmacro %}

{% macro default__date_trunc_to_date(datepart, date) -%}
    date_trunc('{{ datepart }}', {{ date }})
{%- endmacro %}

{% macro duckdb__date_trunc_to_date(datepart, date) -%}
    cast(date_trunc('{{ datepart }}', {{ date }}) as date)
{%- endmacro %}


{#- ISO day of the week: 1 = Monday ... 7 = Sunday. -#}
{% macro iso_day_of_week(date) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'movie_lake')(date)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date) -%}
    day_of_week({{ date }})
{%- endmacro %}

{% macro duckdb__iso_day_of_week(date) -%}
    isodow({{ date }})
{%- endmacro %}


{#- English month and day names (Trino's date_format uses MySQL patterns). -#}
{% macro month_name(date) -%}
    {{ return(adapter.dispatch('month_name', 'movie_lake')(date)) }}
{%- endmacro %}

{% macro default__month_name(date) -%}
    date_format({{ date }}, '%M')
{%- endmacro %}

{% macro duckdb__month_name(date) -%}
    monthname({{ date }})
{%- endmacro %}

{% macro day_name(date) -%}
    {{ return(adapter.dispatch('day_name', 'movie_lake')(date)) }}
{%- endmacro %}

{% macro default__day_name(date) -%}
    date_format({{ date }}, '%W')
{%- endmacro %}

{% macro duckdb__day_name(date) -%}
    dayname({{ date }})
{%- endmacro %}


{#- true when the whole string is an IMDb title id (tt and digits). Trino's regexp_like finds
    a match anywhere; DuckDB's regexp_full_match needs the whole string. -#}
{% macro is_imdb_title_id(expression) -%}
    {{ return(adapter.dispatch('is_imdb_title_id', 'movie_lake')(expression)) }}
{%- endmacro %}

{% macro default__is_imdb_title_id(expression) -%}
    regexp_like({{ expression }}, '^tt[0-9]+$')
{%- endmacro %}

{% macro duckdb__is_imdb_title_id(expression) -%}
    regexp_full_match({{ expression }}, 'tt[0-9]+')
{%- endmacro %}
