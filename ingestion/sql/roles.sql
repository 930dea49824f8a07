-- Least privilege in the warehouse database. Runs as the admin role on every `chiso up`; idempotent.
grant chiso_loader, chiso_transform to current_user;  -- lets a non-superuser admin create their objects
revoke all on database "{{database}}" from public;
revoke create on schema public from public;
grant connect on database "{{database}}" to chiso_loader, chiso_transform, chiso_reader;
grant create on database "{{database}}" to chiso_transform;  -- dbt creates its own schemas
grant temporary on database "{{database}}" to chiso_loader;  -- loads stage COPY batches in temp tables
grant temporary on database "{{database}}" to chiso_transform;  -- dbt unit tests use temporary tables

create schema if not exists raw authorization chiso_loader;
create schema if not exists audit authorization chiso_loader;
create schema if not exists quarantine authorization chiso_loader;

-- dbt reads raw and audit (source freshness, reconciliation); the reader sees audit for dashboards.
grant usage on schema raw, audit to chiso_transform;
grant usage on schema audit to chiso_reader;
alter default privileges for role chiso_loader in schema raw grant select on tables to chiso_transform;
alter default privileges for role chiso_loader in schema audit grant select on tables to chiso_transform, chiso_reader;
alter default privileges for role chiso_loader in schema quarantine grant select on tables to chiso_transform;
grant usage on schema quarantine to chiso_transform, chiso_reader;
alter default privileges for role chiso_loader in schema quarantine grant select on tables to chiso_reader;

-- Whatever dbt builds in marts is readable by Superset; staging and intermediate are not.
create schema if not exists marts authorization chiso_transform;
create schema if not exists staging authorization chiso_transform;
create schema if not exists intermediate authorization chiso_transform;
create schema if not exists seeds authorization chiso_transform;
grant usage on schema marts to chiso_reader;
alter default privileges for role chiso_transform in schema marts grant select on tables to chiso_reader;
