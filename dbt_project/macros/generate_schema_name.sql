{#- Models land in the schema their folder names (staging, intermediate, marts, reference)
    rather than dbt's default "<target schema>_<custom>", so analysts find marts.fct_orders
    under the same name on every warehouse. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
