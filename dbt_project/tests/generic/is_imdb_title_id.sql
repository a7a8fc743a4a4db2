{#- Every non-null value is an IMDb title id: tt and digits, nothing else. -#}
{% test is_imdb_title_id(model, column_name) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
    and not {{ is_imdb_title_id(column_name) }}

{% endtest %}
