{#- The fakesnow stand-in (target `fakesnow`, CI only) runs on DuckDB, which cannot create a
    temporary table inside a named database and schema: snapshots and incremental models
    get a transient table there instead. Every other target takes dbt-snowflake's own macro,
    unchanged. -#}
{% macro snowflake__create_table_temporary_sql(relation, compiled_code) -%}
    {%- if target.name == 'fakesnow' -%}
        {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
    {%- else -%}
        {{ dbt.snowflake__create_table_temporary_sql(relation, compiled_code) }}
    {%- endif -%}
{%- endmacro %}
