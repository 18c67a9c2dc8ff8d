-- One row per currency and rate period: the seed lists the day each rate took effect; a
-- period ends where the currency's next one starts. An order converts at the rate of its
-- order date.
with

exchange_rates as (

    select * from {{ ref('exchange_rates') }}

),

final as (

    select
        cast(currency_code as {{ dbt.type_string() }}) as currency_code,
        cast(valid_from as date) as valid_from,
        cast(
            lead(valid_from) over (partition by currency_code order by valid_from) as date
        ) as valid_to,
        cast(usd_per_unit as numeric(18, 6)) as usd_per_unit

    from exchange_rates

)

select * from final
