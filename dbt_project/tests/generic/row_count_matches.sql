{#- The model has as many rows as compare_model (optionally filtered): a reconciliation with
    the layer below, e.g. a staging view against its trusted table. compare_where may hold the
    snapshot-window placeholders of macros/snapshot_window.sql, as a test's `where` may. -#}
{% test row_count_matches(model, compare_model, compare_where=none) %}

with

model_rows as (
    select count(*) as row_count from {{ model }}
),

compare_rows as (
    select count(*) as row_count from {{ compare_model }}
    {% if compare_where %}where {{ expand_test_window(compare_where) }}{% endif %}
)

select
    model_rows.row_count as model_row_count,
    compare_rows.row_count as compare_row_count
from model_rows
cross join compare_rows
where model_rows.row_count <> compare_rows.row_count

{% endtest %}
