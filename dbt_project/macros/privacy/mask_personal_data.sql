{#- Masking for analysts, from the classification: every column a mart tags
    `pii: direct` (its YAML, `config: {meta: {pii: direct}}`) is masked for every role but
    the privileged one (`shoplogs_pii_reader`, which the pipeline's role holds). Post-hook
    of every mart (dbt_project.yml); the mechanism is each warehouse's own:

    - Snowflake: the masking policy `<database>.governance.pii_direct`
      (infra/snowflake/setup.sql) set on the table's columns, FORCE so a re-run or an
      incremental table keeps exactly one. Views need none: a policy follows its column
      into every view, evaluated for the role that queries.
    - Redshift: dynamic data masking, attached by `shoplogs_mask_column`
      (infra/redshift/setup.sql): a security-definer procedure, so the pipeline attaches
      the project's policies without holding sys:secadmin; it attaches once per column.
    - PostgreSQL (the Redshift stand-in) has no masking: the reporters lose the direct
      columns (column privileges: a `select email` is refused) and read a masked view of
      each mart in `<schema>_masked`; the privileged role reads the table.
    - DuckDB (no roles at all) and fakesnow (no roles, no policies): the masked view
      schema only; analysts point their tools at it (the docs' "Personal data" page).

    The mask itself (`masked_value`) is the one the setup scripts' policies apply:
    test_compile.py keeps them equal. -#}

{% macro pii_level(column) -%}
    {%- set level = ((column.get('config') or {}).get('meta') or {}).get('pii')
        or (column.get('meta') or {}).get('pii') -%}
    {{- return(level) -}}
{%- endmacro %}

{% macro direct_identifiers(columns) -%}
    {%- set names = [] -%}
    {%- for name, column in columns.items() -%}
        {%- if shoplogs.pii_level(column) == 'direct' -%}
            {%- do names.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(names) -}}
{%- endmacro %}

{% macro masked_value(expression) -%}
    case when {{ expression }} is null then null else '{{ var("pii_mask") }}' end
{%- endmacro %}

{% macro masked_relation(relation) -%}
    {{- return(api.Relation.create(
        database=relation.database, schema=relation.schema ~ '_masked',
        identifier=relation.identifier)) -}}
{%- endmacro %}

{#- Post-hook: the statements, `;`-separated (every adapter here runs them one by one). -#}
{% macro mask_personal_data(relation, columns, materialized) -%}
    {{- shoplogs.masking_statements(relation, columns, materialized) | join(';\n') -}}
{%- endmacro %}

{% macro masking_statements(relation, columns, materialized) -%}
    {{- return(adapter.dispatch('masking_statements', 'shoplogs')(
        relation, columns, materialized)) -}}
{%- endmacro %}

{#- DuckDB, fakesnow: a view of the mart with its direct identifiers masked. -#}
{% macro default__masking_statements(relation, columns, materialized) -%}
    {%- set masked = shoplogs.masked_relation(relation) -%}
    {%- set direct = shoplogs.direct_identifiers(columns) -%}
    {%- set select = [] -%}
    {%- for name in columns -%}
        {%- if name in direct -%}
            {%- do select.append(shoplogs.masked_value(name) ~ ' as ' ~ name) -%}
        {%- else -%}
            {%- do select.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return([
        'create or replace view ' ~ masked ~ ' as select ' ~ select | join(', ')
        ~ ' from ' ~ relation,
    ]) -}}
{%- endmacro %}

{#- The Redshift stand-in: the reporters read every mart's non-direct columns and the
    masked view; the privileged role reads the table. Inside dbt's transaction (post-hooks
    run before its commit on PostgreSQL), so no reader ever sees a rebuilt table unmasked. -#}
{% macro postgres__masking_statements(relation, columns, materialized) -%}
    {%- set reporters = 'group ' ~ var('reporter_group') -%}
    {%- set direct = shoplogs.direct_identifiers(columns) -%}
    {%- set masked = shoplogs.masked_relation(relation) -%}
    {%- set clear = [] -%}
    {%- for name in columns if name not in direct -%}
        {%- do clear.append(name) -%}
    {%- endfor -%}
    {%- set view = shoplogs.default__masking_statements(relation, columns, materialized) -%}
    {{- return([
        'revoke select on ' ~ relation ~ ' from ' ~ reporters,
        'grant select (' ~ clear | join(', ') ~ ') on ' ~ relation ~ ' to ' ~ reporters,
        'grant select on ' ~ relation ~ ' to ' ~ var('pii_reader_role'),
        'drop view if exists ' ~ masked,
        view[0] | replace('create or replace view', 'create view'),
        'grant select on ' ~ masked ~ ' to ' ~ reporters,
    ]) -}}
{%- endmacro %}

{% macro redshift__masking_statements(relation, columns, materialized) -%}
    {%- set statements = [] -%}
    {%- if materialized != 'view' -%}
        {%- for name in shoplogs.direct_identifiers(columns) -%}
            {%- do statements.append("call shoplogs_mask_column('" ~ relation.schema ~ "', '"
                ~ relation.identifier ~ "', '" ~ name ~ "')") -%}
        {%- endfor -%}
    {%- endif -%}
    {{- return(statements) -}}
{%- endmacro %}

{% macro snowflake__masking_statements(relation, columns, materialized) -%}
    {%- if shoplogs.on_fakesnow() -%}
        {{- return(shoplogs.default__masking_statements(relation, columns, materialized)) -}}
    {%- endif -%}
    {%- set direct = shoplogs.direct_identifiers(columns) -%}
    {%- if materialized == 'view' or not direct -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set policy = relation.database ~ '.governance.pii_direct' -%}
    {%- set modifications = [] -%}
    {%- for name in direct -%}
        {%- do modifications.append(
            'column ' ~ name ~ ' set masking policy ' ~ policy ~ ' force') -%}
    {%- endfor -%}
    {{- return(['alter table ' ~ relation ~ ' modify ' ~ modifications | join(', ')]) -}}
{%- endmacro %}

{#- on-run-start: the masked schemas the default and PostgreSQL masking write their views
    to, made once before the models run (made by the models' own hooks, two threads would
    race to create one schema). -#}
{% macro create_masked_schemas() -%}
    {%- if execute -%}
        {%- do adapter.dispatch('create_masked_schemas', 'shoplogs')() -%}
    {%- endif -%}
{%- endmacro %}

{#- Returns the marts' schemas it made a masked twin of. -#}
{% macro default__create_masked_schemas() -%}
    {%- set made = [] -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.fqn[1] == 'marts' -%}
        {%- set masked = api.Relation.create(
            database=node.database, schema=node.schema ~ '_masked') -%}
        {%- if node.schema not in made -%}
            {%- do adapter.create_schema(masked) -%}
            {%- do made.append(node.schema) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(made) -}}
{%- endmacro %}

{#- The reporters may enter the masked schemas, the privileged role the marts' (granted
    here, once: two models' hooks granting on one schema at once fail on PostgreSQL, "tuple
    concurrently updated"). On Redshift a privileged person is a reporter holding the role. -#}
{% macro postgres__create_masked_schemas() -%}
    {%- for schema in shoplogs.default__create_masked_schemas() -%}
        {%- do run_query('grant usage on schema ' ~ adapter.quote(schema ~ '_masked')
            ~ ' to group ' ~ var('reporter_group')) -%}
        {%- do run_query('grant usage on schema ' ~ adapter.quote(schema)
            ~ ' to ' ~ var('pii_reader_role')) -%}
    {%- endfor -%}
{%- endmacro %}

{% macro redshift__create_masked_schemas() -%}
{%- endmacro %}

{% macro snowflake__create_masked_schemas() -%}
    {%- if shoplogs.on_fakesnow() -%}
        {%- do shoplogs.default__create_masked_schemas() -%}
    {%- endif -%}
{%- endmacro %}
