{#- The run date a build is for, or none (a `dbt build` by hand). The pipeline sets it in
    SHOPLOGS_RUN_DATE: unlike a changed `--vars`, which makes dbt re-parse the whole project
    (seconds of every nightly build), a changed environment variable re-parses only the
    models that read it. `--vars '{run_date: "2026-11-02"}'` works too, and wins. -#}
{% macro run_date() -%}
    {%- set given = var('run_date', none) or env_var('SHOPLOGS_RUN_DATE', '') -%}
    {{ return(shoplogs.checked_run_date(given, "--vars") if given else none) }}
{%- endmacro %}
