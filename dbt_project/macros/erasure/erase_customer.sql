{#- Erasure of one customer (orchestration/erasure.py runs it as
    `dbt run-operation erase_customer --args '{customer_hash: ..., email_hashes: [...],
    order_hashes: [...]}'`). Only hashes come in (lake/erasure.py: SHA-256 hex of the
    trimmed, lower-cased id), so dbt's logs never hold the identifiers.

    Every table that holds a copy is changed in place, each statement once per table:
    - the raw layer (Snowflake and Redshift load it; DuckDB reads the lake in place, which
      orchestration/erasure.py rewrites) and staging: profile events deleted, order events
      under the tombstone customer id, web requests of the sessions tied to the customer's
      orders without the visitor's identity;
    - marts: the customer's versions leave dim_customers (dim_customers_current is a view
      on it), fct_orders and fct_order_lines keep their money under the tombstone member
      (`erased_customer_key`), fct_web_sessions' tied sessions lose their visitor id;
    - the audit schema (dbt tests' stored failures): rows naming them deleted.
    The intermediate models are views and follow. Prints `erasure_counts: {table: rows}`. -#}
{% macro erase_customer(customer_hash, email_hashes=[], order_hashes=[]) %}
    {%- if not (customer_hash is string and customer_hash | length == 64) -%}
        {{ exceptions.raise_compiler_error(
            "erase_customer: customer_hash must be the 64-character SHA-256 hex of the id "
            ~ "(lake/erasure.py identifier_hash); got " ~ customer_hash) }}
    {%- endif -%}
    {%- set tombstone = var('erased_customer_key') -%}
    {%- set person = [customer_hash] + email_hashes -%}
    {%- set is_customer = shoplogs.hash_in('customer_id', [customer_hash]) -%}
    {%- set is_person = is_customer ~ ' or ' ~ shoplogs.hash_in('email', person) -%}
    {%- set counts = {} -%}

    {#- The sessions tied to their orders, found before any order loses its customer. -#}
    {%- set sessions = [] -%}
    {%- set aggregated = shoplogs.existing(ref('int_web_sessions_aggregated')) -%}
    {%- if aggregated and order_hashes -%}
        {%- set found = run_query(
            'select distinct session_id from ' ~ aggregated ~ ' where '
            ~ shoplogs.hash_in('confirmed_order_id', order_hashes)) -%}
        {%- do sessions.extend(found.columns[0].values() | list) -%}
    {%- endif -%}
    {#- Rows already anonymous do not count again: erasing twice changes nothing. -#}
    {%- set in_sessions = shoplogs.value_in('session_id', sessions) -%}
    {%- if in_sessions -%}
        {%- set in_sessions = in_sessions ~ " and coalesce(visitor_id, '') != '"
            ~ var('erased_visitor_id') ~ "'" -%}
    {%- endif -%}
    {%- set anonymous_visit -%}
        client_ip = null, user_agent = null, remote_user = null, forwarded_for = null,
        visitor_id = '{{ var("erased_visitor_id") }}'
    {%- endset -%}

    {%- set steps = [
        (source('shop', 'customers'), 'delete', is_person, none),
        (source('shop', 'orders'), 'update', is_customer, "customer_id = '" ~ tombstone ~ "'"),
        (source('web', 'web_requests'), 'update', in_sessions, anonymous_visit),
        (ref('stg_shop__customer_events'), 'delete', is_person, none),
        (ref('stg_shop__order_events'), 'update', is_customer,
            "customer_id = '" ~ tombstone ~ "'"),
        (ref('stg_web__requests'), 'update', in_sessions, anonymous_visit),
        (ref('dim_customers'), 'delete', is_customer, none),
        (ref('fct_orders'), 'update', is_customer,
            "customer_id = '" ~ tombstone ~ "', customer_key = '" ~ tombstone ~ "'"),
        (ref('fct_order_lines'), 'update', is_customer,
            "customer_id = '" ~ tombstone ~ "', customer_key = '" ~ tombstone ~ "'"),
        (ref('fct_web_sessions'), 'update', in_sessions,
            "visitor_id = '" ~ var('erased_visitor_id') ~ "'"),
    ] -%}
    {%- for relation, verb, condition, assignments in steps -%}
        {%- set table = shoplogs.existing(relation, 'table') -%}
        {%- if table and condition -%}
            {%- set n = shoplogs.erase_rows(table, verb, condition, assignments) -%}
            {%- do counts.update({(table.schema ~ '.' ~ table.identifier) | lower: n}) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- The failing rows dbt's tests keep (store_failures) may hold their id or email: such
        rows leave every table of the audit schemas, whichever test (current or since
        removed) made it. A value matches whole, as in the steps above. -#}
    {%- for table in shoplogs.audit_tables() -%}
        {%- set texts = [] -%}
        {%- for column in adapter.get_columns_in_relation(table) if column.is_string() -%}
            {%- do texts.append(shoplogs.hash_in(adapter.quote(column.name), person)) -%}
        {%- endfor -%}
        {%- if texts -%}
            {%- set n = shoplogs.erase_rows(table, 'delete', texts | join(' or '), none) -%}
            {%- do counts.update({(table.schema ~ '.' ~ table.identifier) | lower: n}) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- run-operation does not commit by itself (its queries opened the transaction). -#}
    {%- if counts -%}
        {%- do adapter.commit() -%}
    {%- endif -%}
    {{ print('erasure_counts: ' ~ tojson(counts)) }}
{% endmacro %}


{#- `verb` (delete, or update with `assignments`) on the rows of `table` matching
    `condition`; how many there were. -#}
{% macro erase_rows(table, verb, condition, assignments) %}
    {%- set matching = run_query('select count(*) from ' ~ table ~ ' where ' ~ condition) -%}
    {%- set n = matching.columns[0].values()[0] | int -%}
    {%- if n > 0 -%}
        {%- if verb == 'delete' -%}
            {%- do run_query('delete from ' ~ table ~ ' where ' ~ condition) -%}
        {%- else -%}
            {%- do run_query('update ' ~ table ~ ' set ' ~ assignments ~ ' where ' ~ condition) -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(n) }}
{% endmacro %}


{#- Every table of the schemas the project's tests store their failures in (the
    `data_tests: +schema: audit` of dbt_project.yml, as this target names it). -#}
{% macro audit_tables() %}
    {%- set schemas = [] -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'test' -%}
        {%- if (node.database, node.schema) not in schemas -%}
            {%- do schemas.append((node.database, node.schema)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set tables = [] -%}
    {%- for database, schema in schemas -%}
        {#- information_schema: the one listing every engine answers alike (a schema no
            test has written yet lists nothing). -#}
        {%- set names = run_query(
            "select table_name from information_schema.tables"
            ~ " where lower(table_schema) = lower('" ~ schema ~ "')"
            ~ " and table_type = 'BASE TABLE' order by 1") -%}
        {%- for name in names.columns[0].values() -%}
            {%- set table = adapter.get_relation(
                database=database, schema=schema, identifier=name) -%}
            {%- if table is not none and table.type == 'table' -%}
                {%- do tables.append(table) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(tables) }}
{% endmacro %}


{#- The relation if the warehouse has it (of that type, when given), else none: DuckDB
    reads the raw layer in place, and a first erase may come before a first build. -#}
{% macro existing(relation, type=none) %}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {%- if found is none or (type and found.type != type) -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(found) }}
{% endmacro %}


{#- `column`'s hash (lake/erasure.py identifier_hash) is one of `hashes`. -#}
{% macro hash_in(column, hashes) %}
    {%- if not hashes -%}
        {{ return('') }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for h in hashes -%}
        {%- if not (h is string and h | length == 64) -%}
            {{ exceptions.raise_compiler_error("erase_customer: not a SHA-256 hex hash: " ~ h) }}
        {%- endif -%}
        {%- do quoted.append("'" ~ (h | lower) ~ "'") -%}
    {%- endfor -%}
    {{ return(shoplogs.identifier_hash(column) ~ ' in (' ~ quoted | join(', ') ~ ')') }}
{% endmacro %}


{% macro value_in(column, values) %}
    {%- if not values -%}
        {{ return('') }}
    {%- endif -%}
    {%- set quoted = [] -%}
    {%- for v in values -%}
        {%- do quoted.append("'" ~ (v | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ return(column ~ ' in (' ~ quoted | join(', ') ~ ')') }}
{% endmacro %}


{#- SHA-256 hex of the trimmed, lower-cased text: the same hash lake/erasure.py computes. -#}
{% macro identifier_hash(column) %}
    {{ return(adapter.dispatch('identifier_hash', 'shoplogs')(column)) }}
{% endmacro %}

{% macro default__identifier_hash(column) %}
    {{ return('sha2(lower(trim(' ~ column ~ ')), 256)') }}
{% endmacro %}

{% macro duckdb__identifier_hash(column) %}
    {{ return('sha256(lower(trim(' ~ column ~ ')))') }}
{% endmacro %}

{% macro postgres__identifier_hash(column) %}
    {{ return("encode(sha256(convert_to(lower(trim(" ~ column ~ ")), 'UTF8')), 'hex')") }}
{% endmacro %}

{#- Redshift has SHA2 (postgres__ would otherwise apply: Redshift lacks sha256()). -#}
{% macro redshift__identifier_hash(column) %}
    {{ return('sha2(lower(trim(' ~ column ~ ')), 256)') }}
{% endmacro %}
