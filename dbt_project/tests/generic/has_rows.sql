{#- The model is not empty: catches a build that silently selects nothing (a genre var that
    matches no title, a source path that reads no file). -#}
{% test has_rows(model) %}

select count(*) as row_count
from {{ model }}
having count(*) = 0

{% endtest %}
