{#- The newest loaded_at fct_dossier has built, less var fct_dossier_lookback, as text; none when the fact
    does not exist yet or is empty. Raw dossier versions loaded after it are the ones a night has not built:
    fct_dossier reads only those, and the data tests of the views over raw history check only those. -#}
{% macro fct_dossier_cutoff() -%}
    {% if not execute %}{{ return(none) }}{% endif %}
    {% set relation = model_relation('fct_dossier') %}
    {% if relation is none %}{{ return(none) }}{% endif %}
    {% set query %}
        select (max(loaded_at) - interval '{{ var("fct_dossier_lookback") }}')::text from {{ relation }}
    {% endset %}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}

{#- A data test's `where` may say __new_dossier_versions__: the rows loaded after fct_dossier_cutoff(), so a
    night's tests over the staging views of raw.dossiers read that night's versions (through the index on
    raw.dossiers.loaded_at), not the whole history each night; every row on a full refresh or before the
    fact exists. Otherwise dbt's own behaviour: the model filtered by `where`, if any. -#}
{% macro get_where_subquery(relation) -%}
    {% set where = config.get('where') or '' %}
    {% if '__new_dossier_versions__' in where %}
        {% set cutoff = none if flags.FULL_REFRESH else fct_dossier_cutoff() %}
        {% set since = "true" if cutoff is none else "loaded_at > '" ~ cutoff ~ "'::timestamptz" %}
        {% set where = where | replace('__new_dossier_versions__', since) %}
    {% endif %}
    {% if where %}
        {% do return("(select * from " ~ relation ~ " where " ~ where ~ ") dbt_subquery") %}
    {% else %}
        {% do return(relation) %}
    {% endif %}
{%- endmacro %}
