-- The procedures under each unit's authority, the denominators of the procedure-based indicators: the
-- province, every procedure in force; a commune, the commune-level ones in force (all communes carry the
-- same set); an agency, the province-level ones in force it has received dossiers for (the catalogue does
-- not name the agency that owns a procedure).
with

units as (

    select * from {{ ref('dim_unit') }}

),

procedures as (

    select * from {{ ref('dim_procedure') }}

),

dossiers as (

    select * from {{ ref('fct_dossier') }}

),

agency_procedures as (

    select distinct
        dossiers.unit_code,
        dossiers.procedure_code

    from dossiers

    inner join units
        on dossiers.unit_code = units.unit_code

    where units.unit_type = 'agency'

),

authority as (

    select
        units.unit_code,
        procedures.procedure_code

    from units

    inner join procedures
        on
            units.unit_type = 'province'
            or (units.unit_type = 'commune' and procedures.unit_level = 'commune')

    where procedures.is_active

    union all

    select
        agency_procedures.unit_code,
        agency_procedures.procedure_code

    from agency_procedures

    inner join procedures
        on agency_procedures.procedure_code = procedures.procedure_code

    where procedures.is_active and procedures.unit_level = 'province'

),

final as (

    select
        authority.unit_code,
        authority.procedure_code,
        procedures.is_online,
        procedures.has_fees

    from authority

    inner join procedures
        on authority.procedure_code = procedures.procedure_code

)

select * from final
