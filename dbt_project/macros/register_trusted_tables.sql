{#-
    Registers the trusted tables (parquet written by spark/) in the Glue catalog through Athena,
    in their own database (var trusted_schema, default `trusted`). dbt never creates, replaces
    or drops anything there: these are external tables over the trusted/ prefix of the lake,
    and every statement is CREATE ... IF NOT EXISTS, so running it again changes nothing.

        LAKE_URI=s3://my-lake dbt run-operation register_trusted_tables --target athena
        dbt run-operation register_trusted_tables --target athena --args '{dry_run: true}'

    The dry run logs the statements without running them. The statements themselves come from
    trusted_tables_ddl(), which the analysis register_trusted_tables.sql also renders, so
    `dbt compile --target athena` shows (and the tests parse) exactly what would run.
-#}


{#- Columns of each trusted table, in Hive DDL types, as docs/lake-contract.md pins them. -#}
{% macro trusted_table_columns() -%}
    {%- set title = [
        ('title_id', 'string'), ('primary_title', 'string'), ('original_title', 'string'),
        ('release_year', 'int'),
    ] -%}
    {%- set title_facts = [
        ('runtime_minutes', 'int'), ('genres', 'array<string>'), ('average_rating', 'double'),
        ('num_votes', 'bigint'),
    ] -%}
    {%- set credits = [
        ('title_id', 'string'), ('artist_name', 'string'), ('artist_category', 'string'),
        ('characters', 'string'), ('birth_year', 'int'), ('death_year', 'int'),
        ('professions', 'array<string>'), ('known_for_title_ids', 'array<string>'),
    ] -%}
    {%- set genres = [('title_id', 'string'), ('genre', 'string')] -%}
    {{ return({
        'imdb_movies': title + title_facts,
        'imdb_series': title + [('end_year', 'int')] + title_facts,
        'imdb_movie_credits': credits,
        'imdb_series_credits': credits,
        'imdb_movie_genres': genres,
        'imdb_series_genres': genres,
        'tmdb_movie_snapshots': [
            ('tmdb_id', 'bigint'), ('title', 'string'), ('original_title', 'string'),
            ('original_language', 'string'), ('overview', 'string'), ('popularity', 'double'),
            ('vote_average', 'double'), ('vote_count', 'bigint'), ('release_date', 'date'),
            ('genre_ids', 'array<int>'), ('adult', 'boolean'), ('language', 'string'),
            ('snapshot_date', 'date'),
        ],
        'tmdb_movie_details': [
            ('tmdb_id', 'bigint'), ('imdb_id', 'string'), ('title', 'string'),
            ('original_title', 'string'), ('runtime_minutes', 'int'), ('budget', 'bigint'),
            ('revenue', 'bigint'), ('release_date', 'date'), ('genre_ids', 'array<int>'),
            ('language', 'string'), ('fetched_at', 'timestamp'),
        ],
        'tmdb_genres': [('genre_id', 'int'), ('name', 'string'), ('language', 'string')],
    }) }}
{%- endmacro %}


{#- The statements that register the trusted layer under `lake_uri` (s3://bucket[/prefix]). -#}
{% macro trusted_tables_ddl(lake_uri) -%}
    {%- set database = var('trusted_schema') -%}
    {%- set root = lake_uri.rstrip('/') ~ '/trusted' -%}
    {%- set statements = [
        "CREATE DATABASE IF NOT EXISTS `" ~ database ~ "` COMMENT 'movie-lake trusted layer: "
        ~ "parquet written by the Spark job, registered by dbt run-operation "
        ~ "register_trusted_tables; never managed by dbt models' "
        ~ "LOCATION '" ~ root ~ "/'"
    ] -%}
    {%- set partitioned = {
        'tmdb_movie_snapshots': [('year', 'string'), ('month', 'string'), ('day', 'string')],
    } -%}
    {%- for table, columns in trusted_table_columns().items() -%}
        {%- set location = root ~ '/' ~ table ~ '/' -%}
        {%- set column_list = [] -%}
        {%- for name, type in columns -%}
            {%- do column_list.append('`' ~ name ~ '` ' ~ type) -%}
        {%- endfor -%}
        {%- set properties = ["'parquet.compression'='SNAPPY'"] -%}
        {%- set partition_clause = '' -%}
        {%- if table in partitioned -%}
            {%- set partition_list = [] -%}
            {%- for name, type in partitioned[table] -%}
                {%- do partition_list.append('`' ~ name ~ '` ' ~ type) -%}
            {%- endfor -%}
            {%- set partition_clause = 'PARTITIONED BY (' ~ partition_list | join(', ') ~ ') ' -%}
            {#- Partition projection: Athena computes the year=/month=/day= folders instead of
                reading partitions from the catalog, so a new day needs no MSCK REPAIR. -#}
            {%- do properties.extend([
                "'projection.enabled'='true'",
                "'projection.year.type'='integer'",
                "'projection.year.range'='" ~ var('trusted_projection_first_year', 2020) ~ ",2099'",
                "'projection.year.digits'='4'",
                "'projection.month.type'='integer'",
                "'projection.month.range'='1,12'",
                "'projection.month.digits'='2'",
                "'projection.day.type'='integer'",
                "'projection.day.range'='1,31'",
                "'projection.day.digits'='2'",
                "'storage.location.template'='" ~ location ~ "year=${year}/month=${month}/day=${day}/'",
            ]) -%}
        {%- endif -%}
        {%- do statements.append(
            "CREATE EXTERNAL TABLE IF NOT EXISTS `" ~ database ~ "`.`" ~ table ~ "` ("
            ~ column_list | join(', ') ~ ") "
            ~ partition_clause
            ~ "STORED AS PARQUET LOCATION '" ~ location ~ "' "
            ~ "TBLPROPERTIES (" ~ properties | join(', ') ~ ")"
        ) -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}


{% macro register_trusted_tables(dry_run=false) -%}
    {%- set lake_uri = env_var('LAKE_URI', '') -%}
    {%- if not lake_uri.startswith('s3://') -%}
        {{ exceptions.raise_compiler_error(
            "register_trusted_tables needs LAKE_URI=s3://bucket[/prefix] (the lake on S3), got '"
            ~ lake_uri ~ "'. Set LAKE_URI and run it with --target athena; the local target "
            ~ "reads the trusted parquet files directly and needs no registration.") }}
    {%- endif -%}
    {%- if target.type != 'athena' and not dry_run -%}
        {{ exceptions.raise_compiler_error(
            "register_trusted_tables registers tables in the Glue catalog through Athena; "
            ~ "the current target '" ~ target.name ~ "' is " ~ target.type
            ~ ". Run it with --target athena, or pass --args '{dry_run: true}' to print the DDL.") }}
    {%- endif -%}
    {%- for statement in trusted_tables_ddl(lake_uri) -%}
        {%- if dry_run -%}
            {{ log(statement ~ ';', info=true) }}
        {%- else -%}
            {{ log('register_trusted_tables: ' ~ statement.split('(')[0], info=true) }}
            {%- do run_query(statement) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ log(('Would register ' if dry_run else 'Registered ') ~ (trusted_table_columns() | length)
           ~ ' trusted tables in the `' ~ var('trusted_schema') ~ '` database under '
           ~ lake_uri.rstrip('/') ~ '/trusted/', info=true) }}
{%- endmacro %}


{#- on-run-start guard: refuse a target whose refined tables would land on the trusted layer.
    dbt-athena deletes the data under a table's location when it rebuilds the table. -#}
{% macro assert_refined_apart_from_trusted() -%}
    {%- set trusted = var('trusted_schema') -%}
    {%- if target.schema == trusted or target.schema.startswith(trusted ~ '_') -%}
        {{ exceptions.raise_compiler_error(
            "The target schema '" ~ target.schema ~ "' is (or starts like) the trusted database '"
            ~ trusted ~ "', which dbt must never manage. Use a schema of its own, e.g. refined.") }}
    {%- endif -%}
    {%- set data_dir = (target.get('s3_data_dir') or '').rstrip('/') ~ '/' -%}
    {%- if '/trusted/' in data_dir -%}
        {{ exceptions.raise_compiler_error(
            "s3_data_dir '" ~ data_dir ~ "' lies under a trusted/ prefix; dbt-athena would "
            ~ "delete trusted data when it rebuilds a table. Point it at the lake's refined/ "
            ~ "prefix (ATHENA_S3_DATA_DIR=s3://bucket/refined/).") }}
    {%- endif -%}
{%- endmacro %}
