{#- A model's relation as built in the warehouse, by name; none before its first build. For macros that read
    a table at execution without ref(): a ref() called only at execution is not in the DAG. -#}
{% macro model_relation(name) -%}
    {% set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', name) | first %}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias)) }}
{%- endmacro %}
