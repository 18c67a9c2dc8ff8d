{#- Text of any length. Redshift's plain varchar is varchar(256), too short for URLs and
    user agents; elsewhere varchar has no practical limit. -#}
{% macro type_long_string() -%}
    {{ return(adapter.dispatch('type_long_string', 'shoplogs')()) }}
{%- endmacro %}

{% macro default__type_long_string() -%}
    {{ return(dbt.type_string()) }}
{%- endmacro %}

{% macro redshift__type_long_string() -%}
    {{ return('varchar(65535)') }}
{%- endmacro %}
