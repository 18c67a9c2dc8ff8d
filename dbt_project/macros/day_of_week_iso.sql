{#- ISO day of week, 1 = Monday .. 7 = Sunday. Warehouses disagree on how to spell it. -#}
{% macro day_of_week_iso(date_expression) -%}
    {{ return(adapter.dispatch('day_of_week_iso', 'shoplogs')(date_expression)) }}
{%- endmacro %}

{% macro default__day_of_week_iso(date_expression) -%}
    cast(extract(isodow from {{ date_expression }}) as integer)
{%- endmacro %}

{% macro snowflake__day_of_week_iso(date_expression) -%}
    dayofweekiso({{ date_expression }})
{%- endmacro %}

{% macro redshift__day_of_week_iso(date_expression) -%}
    {#- Redshift's extract(dow) is 0 = Sunday and it has no isodow. -#}
    cast(case extract(dow from {{ date_expression }}) when 0 then 7 else extract(dow from {{ date_expression }}) end as integer)
{%- endmacro %}
