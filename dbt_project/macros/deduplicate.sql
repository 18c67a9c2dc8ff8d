{#- Keep one row per `partition_by`, the first by `order_by`.
    A row_number() subquery rather than QUALIFY or DISTINCT ON, because it runs unchanged on
    DuckDB, Snowflake, Redshift and PostgreSQL. -#}
{% macro deduplicate(relation, partition_by, order_by) -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ partition_by }}
                order by {{ order_by }}
            ) as dedupe_row_number
        from {{ relation }}
    ) as ranked
    where dedupe_row_number = 1
{%- endmacro %}
