-- The DDL that `dbt run-operation register_trusted_tables` runs on Athena, rendered for review:
-- `dbt compile --target athena` writes it to target/compiled/.../register_trusted_tables.sql
-- (the tests parse it with sqlglot's athena dialect). The lake location is LAKE_URI, or a
-- placeholder bucket when the lake is a local folder.
{%- set lake_uri = env_var('LAKE_URI', '') %}
{%- if not lake_uri.startswith('s3://') %}{% set lake_uri = 's3://your-lake-bucket' %}{% endif %}
{% for statement in trusted_tables_ddl(lake_uri) %}
{{ statement }};
{% endfor %}
