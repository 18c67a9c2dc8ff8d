"""The web format compiler on its own (no Spark): what each format string compiles to, and
the errors a bad one gets. Python's regex reads the possessive patterns as Java's does."""

from __future__ import annotations

import re

import pytest

from preprocess.formats import FormatError, compile_format

NGINX_TIMED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time $upstream_response_time $host'
)
APACHE_D = r"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\" %D %v"


def fields(spec: str, line: str) -> dict[str, str] | None:
    """The known fields of ``line`` in format ``spec``, None when it does not match."""
    compiled = compile_format(spec)
    match = re.match(compiled.pattern, line)
    return {name: match[group] for name, group in compiled.groups.items()} if match else None


def test_an_nginx_log_format_with_timings_and_a_host() -> None:
    line = (
        '2001:db8::7 - - [01/Nov/2026:10:00:00 +0100] "GET /a.js type= HTTP/1.1" 200 12 "-" '
        '"Mozilla/5.0" 0.125 0.010, 0.100 shop.example.com'
    )
    assert fields(NGINX_TIMED, line) == {
        "client": "2001:db8::7", "remote_user": "-", "time_local": "01/Nov/2026:10:00:00 +0100",
        "request": "GET /a.js type= HTTP/1.1", "status": "200", "bytes_sent": "12",
        "referrer": "-", "user_agent": "Mozilla/5.0", "request_time": "0.125",
        "upstream_time": "0.010, 0.100", "virtual_host": "shop.example.com",
    }  # fmt: skip
    assert fields(NGINX_TIMED, line.replace(" shop.example.com", "")) is None  # exact


def test_an_apache_logformat_with_duration_and_vhost_and_a_hostname_client() -> None:
    line = (
        "crawl-66-249-66-1.googlebot.com - frank [10/Oct/2026:13:55:36 -0700] "
        '"GET /p HTTP/1.1" 200 2326 "-" "Googlebot/2.1 \\"x\\"" 1532 www.example.com'
    )
    found = fields(APACHE_D, line)
    assert found is not None
    assert found["client"] == "crawl-66-249-66-1.googlebot.com"
    assert found["time_local"] == "10/Oct/2026:13:55:36 -0700"  # %t brings its brackets
    assert (found["request_time_us"], found["virtual_host"]) == ("1532", "www.example.com")
    assert found["user_agent"] == 'Googlebot/2.1 \\"x\\"'


def test_shortcuts_combined_reads_common_lines_and_trailing_fields() -> None:
    common = '10.0.0.1 - - [01/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5'
    combined = compile_format(None)
    assert combined.source == "combined" and combined.agent_marker is not None
    assert re.match(combined.pattern, common + ' "-" "curl/8" "203.0.113.9" rt=0.1')
    assert re.match(combined.pattern, common)
    assert fields("common", common + ' "-" "x"') is not None  # trailing fields
    assert "user_agent" not in compile_format("common").groups
    assert compile_format("nginx").groups["forwarded_for"] == 9
    assert compile_format("apache-combined-D").groups["request_time_us"] == 10


def test_an_alb_style_line() -> None:
    line = (
        "https 2026-11-01T10:00:00.123456Z app/shop/50dc6c 192.0.2.10:46532 10.0.1.5:80 "
        '0.000 0.042 0.000 200 200 34 366 "GET https://shop.example.com:443/p/1 HTTP/1.1" '
        '"Mozilla/5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:x '
        '"Root=1-58337262-36d228ad5d99923122bbe354" "shop.example.com" "arn:cert" 0 '
        '2026-11-01T10:00:00.081000Z "forward" "-" "-" "10.0.1.5:80" "200" "-" "-"'
    )
    found = fields("alb", line)
    assert found is not None
    assert (found["client"], found["time_iso8601"]) == ("192.0.2.10", "2026-11-01T10:00:00.123456Z")
    assert (found["request_time"], found["status"], found["virtual_host"]) == (
        "0.042", "200", "shop.example.com"
    )  # fmt: skip


def test_json_formats_map_known_fields_to_keys() -> None:
    template = (
        'escape=json \'{"ts":"$time_iso8601","ip":"$remote_addr","req":"$request",'
        '"status":$status,"rt":$request_time,"ua":"$http_user_agent","x":"$connection"}\''
    )
    compiled = compile_format(template.replace("'", ""))
    assert compiled.is_json and compiled.json_keys == {
        "time_iso8601": "ts", "client": "ip", "request": "req", "status": "status",
        "request_time": "rt", "user_agent": "ua",
    }  # fmt: skip
    default = compile_format("json")
    assert default.json_keys["client"] == "remote_addr"
    assert default.json_keys["bytes_sent"] == "body_bytes_sent"


def test_a_format_pasted_with_its_config_quotes_is_the_same_format() -> None:
    nginx_conf = (
        "'$remote_addr - $remote_user [$time_local] ' '\"$request\" $status $body_bytes_sent'"
    )
    assert compile_format(nginx_conf).pattern == compile_format("common").pattern.replace(
        "(?: .*+)?$", "$"
    )
    apache_conf = '"' + APACHE_D + '"'
    assert compile_format(apache_conf).pattern == compile_format(APACHE_D).pattern


def test_the_patterns_are_possessive_so_java_cannot_recurse_per_character() -> None:
    for spec in ("combined", "common", "nginx", "apache-combined-D", "alb", NGINX_TIMED):
        pattern = compile_format(spec).pattern
        # Every repeated group is possessive; only single characters repeat greedily.
        assert not re.search(r"\)[*+](?![+])", pattern), spec
        assert pattern.startswith("^") and pattern.endswith("$")


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("$remote_addr$remote_user [$time_local]", "$remote_addr and $remote_user touch"),
        ('%h %Z %t "%r" %s', "%Z is no Apache LogFormat directive"),
        ("nginx-main", "neither a shortcut"),
        ('$remote_addr "$request" $status', "has no time field; add $time_local"),
        ("$remote_addr [$time_local] $status", "has no request field; add $request"),
        ('$remote_addr [$time_local] "$request"', "has no status field; add $status"),
        ('%h %{%d/%b/%Y}t "%r" %>s', "%{%d/%b/%Y}t is a custom time format"),
        ('{"time": "$time_iso8601",', "is not a JSON object"),
    ],
)
def test_a_bad_format_gets_an_error_naming_the_token_and_the_fix(spec: str, names: str) -> None:
    with pytest.raises(FormatError, match=re.escape(names)):
        compile_format(spec)
