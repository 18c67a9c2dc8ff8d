{#- Pre-hook of every model: session settings a model's SQL must not inherit from the
    account. On Snowflake, `timestamp` means whatever TIMESTAMP_TYPE_MAPPING says (an account
    set to TIMESTAMP_LTZ would shift every stored time to the session's zone) and
    date_trunc('week') starts the week on WEEK_START: pinned here, in the session that builds
    the model, to UTC-naive timestamps and ISO weeks (Monday). dim_date also spells the week
    out, so it holds whatever the session says. Elsewhere: nothing to pin. The fakesnow
    stand-in (DuckDB) has neither parameter. -#}
{% macro pin_session_parameters() -%}
    {{ return(adapter.dispatch('pin_session_parameters', 'shoplogs')()) }}
{%- endmacro %}

{% macro default__pin_session_parameters() -%}
{%- endmacro %}

{% macro snowflake__pin_session_parameters() -%}
    {%- if not shoplogs.on_fakesnow() -%}
        alter session set timestamp_type_mapping = 'TIMESTAMP_NTZ';
        alter session set week_start = 1
    {%- endif -%}
{%- endmacro %}
