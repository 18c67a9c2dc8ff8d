{#- Models land in the schema their folder names (staging, intermediate, marts, reference),
    so analysts find marts.fct_orders under the same name on every warehouse, but only where
    one environment owns the warehouse: prod (SHOPLOGS_ENV=prod, which orchestration sets
    from its settings) and the local stand-ins (a DuckDB file or an emulator server that
    one run owns). Every other build (dev, CI, a developer's dbt against a real warehouse)
    writes "<target schema>_<folder>", dbt's own convention, so it can never overwrite
    prod's marts; an unset SHOPLOGS_ENV counts as not prod. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif shoplogs.owns_warehouse() -%}
        {{ custom_schema_name | trim }}
    {%- else -%}
        {{ target.schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}


{#- The local stand-ins' targets (profiles.yml): each run has its own file or server. -#}
{% macro owns_warehouse() %}
    {{ return(env_var('SHOPLOGS_ENV', '') == 'prod'
        or target.name in ['duckdb', 'postgres', 'fakesnow']) }}
{% endmacro %}
