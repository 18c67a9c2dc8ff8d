{#- Days from `start` to `end` (ISO dates, end exclusive), worked out while compiling. -#}
{% macro days_between(start, end) -%}
    {%- set first = modules.datetime.date.fromisoformat(start | string) -%}
    {%- set last = modules.datetime.date.fromisoformat(end | string) -%}
    {{ return((last - first).days) }}
{%- endmacro %}
