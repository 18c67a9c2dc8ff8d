{#- Workarounds for the fakesnow stand-in (target `fakesnow`, CI only). Each macro below
    overrides a dbt-snowflake macro for that target alone; every other target, real
    Snowflake included, gets dbt-snowflake's own macro unchanged. -#}

{% macro on_fakesnow() %}
    {{ return(target.name == 'fakesnow') }}
{% endmacro %}


{#- DuckDB underneath cannot create a temporary table inside a named database and schema:
    the snapshot's staging table is a transient table there. -#}
{% macro snowflake__create_table_temporary_sql(relation, compiled_code) -%}
    {%- if shoplogs.on_fakesnow() -%}
        {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
    {%- else -%}
        {{ dbt.snowflake__create_table_temporary_sql(relation, compiled_code) }}
    {%- endif -%}
{%- endmacro %}


{#- fakesnow's MERGE cannot resolve the unqualified column names of `insert ... values (...)`;
    Snowflake resolves them to the source row, so qualifying them says the same thing. -#}
{% macro qualify_merge_values(sql, columns) %}
    {%- set qualified = [] -%}
    {%- for column in columns -%}
        {%- do qualified.append('DBT_INTERNAL_SOURCE.' ~ column) -%}
    {%- endfor -%}
    {%- set plain = columns | join(', ') -%}
    {{ return(sql
        | replace('values\n        (' ~ plain ~ ')', 'values (' ~ qualified | join(', ') ~ ')')
        | replace('values (' ~ plain ~ ')', 'values (' ~ qualified | join(', ') ~ ')')) }}
{% endmacro %}


{#- fakesnow's MERGE also writes to its own catalog database, which DuckDB refuses inside
    the explicit transaction dbt-snowflake wraps MERGE in: on fakesnow the MERGE runs on
    its own (a single statement is atomic anyway). -#}
{% macro snowflake__snapshot_merge_sql(target, source, insert_cols) %}
    {%- if shoplogs.on_fakesnow() -%}
        {{ return(shoplogs.qualify_merge_values(
            dbt.default__snapshot_merge_sql(target, source, insert_cols), insert_cols)) }}
    {%- endif -%}
    {{ return(dbt.snowflake__snapshot_merge_sql(target, source, insert_cols)) }}
{% endmacro %}


{% macro snowflake__get_merge_sql(target, source_sql, unique_key, dest_columns, incremental_predicates) %}
    {%- if shoplogs.on_fakesnow() and unique_key -%}
        {%- set columns = get_quoted_csv(dest_columns | map(attribute='name')).split(', ') -%}
        {{ return(shoplogs.qualify_merge_values(dbt.default__get_merge_sql(
            target, source_sql, unique_key, dest_columns, incremental_predicates), columns)) }}
    {%- endif -%}
    {{ return(dbt.snowflake__get_merge_sql(
        target, source_sql, unique_key, dest_columns, incremental_predicates)) }}
{% endmacro %}


{#- fakesnow has no INFER_SCHEMA: the staged files' columns go unchecked there (the check
    itself, `check_staged_columns`, is the same macro on every Snowflake target). -#}
{% macro snowflake__staged_columns(check_sql) %}
    {%- if shoplogs.on_fakesnow() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(shoplogs.default__staged_columns(check_sql)) }}
{% endmacro %}
