-- One-time setup of a Redshift database for shoplogs (provisioned cluster or Serverless
-- workgroup; infra/ creates those). Idempotent: run it again after any change.
-- Run as a superuser in the shoplogs database. Render it with
--   python -m infra.warehouse_setup redshift > setup.rendered.sql
-- which fills ${...} from the environment (GLUE_DATABASE, REDSHIFT_SPECTRUM_ROLE_ARN,
-- REDSHIFT_PIPELINE_USER; SHOPLOGS_ENV names the last: IAMR:shoplogs-<env>-mwaa).

-- Redshift has no CREATE GROUP IF NOT EXISTS: this procedure makes it idempotent.
create or replace procedure shoplogs_ensure_group(group_name varchar(128))
as $$
begin
    if not exists (select 1 from pg_group where groname = group_name) then
        execute 'create group ' || quote_ident(group_name);
    end if;
end;
$$ language plpgsql;

call shoplogs_ensure_group('shoplogs_transformers');
call shoplogs_ensure_group('shoplogs_reporters');

-- The pipeline's user. With IAM auth on Serverless (GetCredentials) the MWAA execution role
-- logs in as IAMR:<role name> (orchestration/settings.redshift_pipeline_user); Redshift would
-- create that user at its first login, with PUBLIC's privileges only. Made here, it logs in
-- as a transformer from the first run, and only with IAM's temporary credentials.
-- Quoted, a user name keeps its case on Redshift whatever enable_case_sensitive_identifier says.
create or replace procedure shoplogs_ensure_user(user_name varchar(128))
as $$
begin
    if not exists (select 1 from pg_user where usename = user_name) then
        execute 'create user ' || quote_ident(user_name) || ' password disable';
    end if;
end;
$$ language plpgsql;

create or replace procedure shoplogs_ensure_member(group_name varchar(128), user_name varchar(128))
as $$
begin
    if not exists (
        select 1 from pg_group, pg_user
        where groname = group_name and usename = user_name and usesysid = any(grolist)
    ) then
        execute 'alter group ' || quote_ident(group_name) || ' add user ' || quote_ident(user_name);
    end if;
end;
$$ language plpgsql;

call shoplogs_ensure_user('${REDSHIFT_PIPELINE_USER}');
call shoplogs_ensure_member('shoplogs_transformers', '${REDSHIFT_PIPELINE_USER}');

-- Personal data (dbt_project/docs/privacy.md): analysts read direct identifiers masked;
-- the role shoplogs_pii_reader reads them clear. Dynamic data masking attaches to users and
-- roles, not groups, hence a role. The pipeline holds it: it builds the marts from clear
-- values and erases a customer by their email.
create or replace procedure shoplogs_ensure_role(new_role varchar(128))
as $$
begin
    if not exists (select 1 from svv_roles where role_name = new_role) then
        execute 'create role ' || quote_ident(new_role);
    end if;
end;
$$ language plpgsql;

call shoplogs_ensure_role('shoplogs_pii_reader');
grant role shoplogs_pii_reader to "${REDSHIFT_PIPELINE_USER}";

-- The masking policies: masked for everyone (PUBLIC), clear for shoplogs_pii_reader at a
-- higher priority. The mask is the dbt var pii_mask.
create or replace procedure shoplogs_ensure_masking_policies()
as $$
begin
    if not exists (select 1 from svv_masking_policy where policy_name = 'shoplogs_pii_direct') then
        execute 'create masking policy shoplogs_pii_direct with (val varchar(65535)) '
            || 'using (case when val is null then null else ''*****'' end)';
    end if;
    if not exists (select 1 from svv_masking_policy where policy_name = 'shoplogs_pii_clear') then
        execute 'create masking policy shoplogs_pii_clear with (val varchar(65535)) using (val)';
    end if;
end;
$$ language plpgsql;

call shoplogs_ensure_masking_policies();

-- dbt attaches them to each column the project tags `pii: direct` after each build
-- (dbt_project/macros/privacy/mask_personal_data.sql), through this procedure: it runs as
-- its owner (an admin), so the pipeline attaches these two policies without holding
-- sys:secadmin, and only once per column (a rebuilt table has none; an incremental keeps them).
create or replace procedure shoplogs_mask_column(
    in_schema varchar(128), in_table varchar(128), in_column varchar(128)
)
as $$
declare
    target varchar(600) := quote_ident(in_schema) || '.' || quote_ident(in_table)
        || '(' || quote_ident(in_column) || ')';
begin
    if not exists (
        select 1 from svv_attached_masking_policy
        where schema_name = in_schema and table_name = in_table
            and policy_name = 'shoplogs_pii_direct'
            and output_columns like '%"' || in_column || '"%'
    ) then
        execute 'attach masking policy shoplogs_pii_direct on ' || target || ' to public';
        execute 'attach masking policy shoplogs_pii_clear on ' || target
            || ' to role shoplogs_pii_reader priority 10';
    end if;
end;
$$ language plpgsql security definer;

grant execute on procedure shoplogs_mask_column(varchar, varchar, varchar)
    to group shoplogs_transformers;

-- A schema per layer (dbt_project/macros/generate_schema_name.sql).
create schema if not exists raw_data;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists reference;
create schema if not exists snapshots;
create schema if not exists audit;
create schema if not exists analytics;

-- Builds outside prod (dbt's "<target schema>_<layer>" schemas) create their own schemas.
grant create on database shoplogs to group shoplogs_transformers;
grant usage, create on schema raw_data to group shoplogs_transformers;
grant usage, create on schema staging to group shoplogs_transformers;
grant usage, create on schema intermediate to group shoplogs_transformers;
grant usage, create on schema marts to group shoplogs_transformers;
grant usage, create on schema reference to group shoplogs_transformers;
grant usage, create on schema snapshots to group shoplogs_transformers;
grant usage, create on schema audit to group shoplogs_transformers;
grant usage, create on schema analytics to group shoplogs_transformers;

-- Analysts read the marts and the stored test failures: what is there now, and what the
-- pipeline's user builds from now on. Default privileges belong to the user who creates the
-- object (without FOR USER, only this admin's); Redshift has no FOR GROUP, so they are set
-- for the user dbt runs as. ON TABLES covers views too.
grant usage on schema marts to group shoplogs_reporters;
grant usage on schema audit to group shoplogs_reporters;
grant select on all tables in schema marts to group shoplogs_reporters;
grant select on all tables in schema audit to group shoplogs_reporters;
alter default privileges for user "${REDSHIFT_PIPELINE_USER}" in schema marts
    grant select on tables to group shoplogs_reporters;
alter default privileges for user "${REDSHIFT_PIPELINE_USER}" in schema audit
    grant select on tables to group shoplogs_reporters;

-- Optional: Redshift Spectrum over the Glue Data Catalog the pipeline registers each run
-- in (lake/catalog.py), to query the processed zone in place.
create external schema if not exists spectrum
    from data catalog
    database '${GLUE_DATABASE}'
    iam_role '${REDSHIFT_SPECTRUM_ROLE_ARN}';
grant usage on schema spectrum to group shoplogs_transformers;
