{#- No row holds an IP address in the clear in `column_name`: the Spark job writes client
    addresses as keyed hashes (64 hex digits, docs/data-contract.md "Personal data"), and
    every IPv4 or IPv6 literal has a '.' or a ':', which no pseudonym has. Nulls pass. -#}
{% test holds_no_address(model, column_name) %}

select {{ column_name }}

from {{ model }}
where {{ column_name }} like '%.%' or {{ column_name }} like '%:%'

{% endtest %}
