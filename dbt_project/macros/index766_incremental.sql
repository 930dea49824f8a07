{#- The service index's tables are incremental by month (delete+insert on period_start, configured in
    dbt_project.yml): a night recomputes whole months from the first month a change touches and keeps the
    earlier ones as built. Each table has built_at (when the row was computed); these macros find, before
    the build, that first month as a date literal ('-infinity' on a full build or when nothing is built yet:
    every month). They read the tables the service index is built from, as last built, by name
    (model_relation): reading one a model does not use can only widen the months it rebuilds. -#}

{#- The query's one value as a date literal; when it is null, `if_null`. -#}
{% macro _first_month(query, if_null) -%}
    {% set month = run_query(query).columns[0].values()[0] if execute else none %}
    {{ return(if_null if month is none else "'" ~ month ~ "'::date") }}
{%- endmacro %}

{#- The daily-increment tables (int_index766__dossier_daily, _procedure_daily, _petition_daily): the month the
    last build reached (it gains days), and the months of what was loaded since that build (less var
    fct_dossier_lookback, as fct_dossier): dossiers (received and finished months), petitions (their month)
    and the dossiers petitions and ratings complain about (their received month). -#}
{% macro index766_first_changed_month() -%}
    {% if not (execute and is_incremental()) %}{{ return("'-infinity'::date") }}{% endif %}
    {% set dossiers = model_relation('fct_dossier') %}
    {% set query %}
        with last_build as (
            select
                max(built_at) - interval '{{ var("fct_dossier_lookback") }}' as since,
                max(period_start) as last_month
            from {{ this }}
        ),
        complained as (
            select dossier_code from {{ model_relation('fct_feedback') }}, last_build
            where loaded_at > last_build.since
            union
            select dossier_code from {{ model_relation('fct_rating') }}, last_build
            where loaded_at > last_build.since
        )
        select least(
            (select last_month from last_build),
            (
                select min(least(received_month, finished_month)) from {{ dossiers }}, last_build
                where loaded_at > last_build.since
            ),
            (
                select min(received_month) from {{ model_relation('fct_feedback') }}, last_build
                where loaded_at > last_build.since
            ),
            (select min(received_month) from {{ dossiers }} where dossier_code in (select dossier_code from complained))
        )::text
    {% endset %}
    {{ return(_first_month(query, "'-infinity'::date")) }}
{%- endmacro %}

{#- A table built from other incremental-by-month tables: the first month any of them rebuilt since this
    table's last build (their built_at after its newest), or any row of `loaded` (model name: month column)
    loaded since then concerns; 'infinity' (no month) when none. -#}
{% macro index766_first_rebuilt_month(upstream_names, loaded={}) -%}
    {% if not (execute and is_incremental()) %}{{ return("'-infinity'::date") }}{% endif %}
    {% set query %}
        with last_build as (select coalesce(max(built_at), '-infinity') as built_at from {{ this }})
        select least(
            {%- for name in upstream_names %}
            (
                select min(upstream.period_start) from {{ model_relation(name) }} as upstream, last_build
                where upstream.built_at > last_build.built_at
            ){{ "," if not loop.last or loaded }}
            {%- endfor %}
            {%- for name, month_column in loaded.items() %}
            (
                select min(source.{{ month_column }}) from {{ model_relation(name) }} as source, last_build
                where source.loaded_at > last_build.built_at
            ){{ "," if not loop.last }}
            {%- endfor %}
        )::text
    {% endset %}
    {{ return(_first_month(query, "'infinity'::date")) }}
{%- endmacro %}
