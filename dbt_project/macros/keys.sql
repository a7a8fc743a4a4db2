{#- Keys and portable arithmetic: the same SQL on both engines, so no dispatch. -#}


{#- A surrogate key: the md5 hex of the fields, each cast to a string, nulls spelled out.
    dbt.hash gives the same hex digest on Athena and DuckDB. -#}
{% macro surrogate_key(fields) -%}
    {%- set parts = [] -%}
    {%- for field in fields -%}
        {%- do parts.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
    {%- endfor -%}
    {{ dbt.hash(parts | join(" || '|' || ")) }}
{%- endmacro %}


{#- The yyyymmdd integer key of a date, the key of dim_date. -#}
{% macro date_key(date) -%}
    cast(year({{ date }}) * 10000 + month({{ date }}) * 100 + day({{ date }}) as integer)
{%- endmacro %}


{#- A ratio as a double. `7 / 2` is 3 on Athena (integer division) and 3.5 on DuckDB: cast the
    numerator so both give 3.5; a zero denominator gives null, not an error. -#}
{% macro divide(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif({{ denominator }}, 0))
{%- endmacro %}


{#- The key of a movie of dim_movie: its IMDb id when TMDB links it to one (or it comes from
    IMDb), else its TMDB id. The fact computes it from the same columns, so both agree. -#}
{% macro movie_key(imdb_id, tmdb_id) -%}
    {{ surrogate_key([imdb_id, 'case when ' ~ imdb_id ~ ' is null then ' ~ tmdb_id ~ ' end']) }}
{%- endmacro %}
