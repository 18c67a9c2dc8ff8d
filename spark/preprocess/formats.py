"""Web log formats: a server's own format definition compiled into one parser.

A web stream is configured with the format its server writes (docs/data-contract.md):

- an nginx ``log_format`` string: ``$remote_addr - $remote_user [$time_local] "$request" ...``
- an Apache ``LogFormat`` string: ``%h %l %u %t \\"%r\\" %>s %b ...``
- a named shortcut: ``combined`` (the default), ``common``, ``combined+``, ``nginx``,
  ``apache-combined-D``, ``alb``
- ``json`` (nginx's ``escape=json`` logs keyed by variable name), or the JSON template of
  the ``log_format`` itself (``{"ts":"$time_iso8601","status":$status,...}``).

A text format compiles to one anchored regex whose groups are the format's fields, and the
mapping from known field to group; a JSON format to the mapping from known field to key.
Every repetition in the regex is possessive or a single character class, which Java's regex
engine runs as a loop: no per-character recursion, so a 1 MB field cannot overflow its
stack. Standard library only: ``make run`` checks a format before anything starts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# The known fields, and the variables that carry them.
NGINX_VARIABLES = {
    "remote_addr": "client",
    "remote_user": "remote_user",
    "time_local": "time_local",
    "time_iso8601": "time_iso8601",
    "msec": "msec",
    "request": "request",
    "request_method": "method",
    "request_uri": "path",
    "server_protocol": "protocol",
    "status": "status",
    "body_bytes_sent": "bytes_sent",
    "bytes_sent": "bytes_sent",
    "http_referer": "referrer",
    "http_user_agent": "user_agent",
    "http_x_forwarded_for": "forwarded_for",
    "request_time": "request_time",
    "upstream_response_time": "upstream_time",
    "request_id": "request_id",
    "host": "virtual_host",
    "server_name": "virtual_host",
    "http_host": "virtual_host",
}
APACHE_DIRECTIVES = {
    "h": "client",
    "a": "client",
    "u": "remote_user",
    "t": "time_local",
    "r": "request",
    "m": "method",
    "U": "path",
    "H": "protocol",
    "s": "status",
    ">s": "status",
    "b": "bytes_sent",
    "B": "bytes_sent",
    "O": "bytes_sent",
    "D": "request_time_us",
    "T": "request_time_s",
    "v": "virtual_host",
    "V": "virtual_host",
}
APACHE_HEADERS = {
    "referer": "referrer",
    "user-agent": "user_agent",
    "x-forwarded-for": "forwarded_for",
    "x-request-id": "request_id",
}
TIME_FIELDS = ("time_local", "time_iso8601", "msec")
REQUEST_FIELDS = ("request", "path")

QUOTED = r'((?:[^"\\]++|\\.)*+)'

COMMON = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'
AGENT_FIELDS = ' "$http_referer" "$http_user_agent"'
COMBINED = COMMON + AGENT_FIELDS
APACHE_COMBINED = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"'
# An AWS Application Load Balancer's access log (its documented field order; the fields this
# pipeline has no use for are anonymous and stay in the raw line). AWS adds fields at the end
# over time, so trailing fields are accepted.
ALB = (
    "$type $time_iso8601 $elb $remote_addr:$remote_port $target $request_processing_time "
    "$request_time $response_processing_time $status $target_status $received_bytes "
    '$body_bytes_sent "$request" "$http_user_agent" $ssl_cipher $ssl_protocol '
    '$target_group_arn "$trace_id" "$host"'
)


@dataclass(frozen=True)
class Shortcut:
    format: str
    optional_tail: str = ""  # fields a line may leave out (combined's referer and agent)
    trailing: bool = True  # extra fields after the last are accepted (kept in the raw line)


SHORTCUTS = {
    # combined also reads common-format lines (no referer and agent: the agent is unknown)
    # and trailing fields, as it always has: real servers write both.
    "combined": Shortcut(COMMON, optional_tail=AGENT_FIELDS),
    "combined+": Shortcut(COMMON, optional_tail=AGENT_FIELDS),
    "common": Shortcut(COMMON),
    "nginx": Shortcut(COMBINED + ' "$http_x_forwarded_for"'),  # nginx's `main`
    "apache-combined-D": Shortcut(APACHE_COMBINED + " %D"),
    "alb": Shortcut(ALB),
}
DEFAULT = "combined"
# `json`: nginx `escape=json` logs keyed by the variables' names.
DEFAULT_JSON_KEYS = {name: known for name, known in NGINX_VARIABLES.items()}


class FormatError(ValueError):
    """A web format that cannot be compiled; the message names the token and the fix."""


@dataclass(frozen=True)
class WebFormat:
    """A compiled web format: ``pattern`` and ``groups`` (known field -> group number) for a
    text format, or ``json_keys`` (known field -> key) for a JSON one. ``agent_marker`` is
    the group that is non-empty when a line carried the format's optional user agent."""

    source: str
    pattern: str = ""
    groups: dict[str, int] = field(default_factory=dict)
    json_keys: dict[str, str] = field(default_factory=dict)
    agent_marker: int | None = None

    @property
    def is_json(self) -> bool:
        return bool(self.json_keys)

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(self.json_keys or self.groups)


# A format is literal text and variables; these find the variables of each syntax.
NGINX_TOKEN = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
APACHE_TOKEN = re.compile(r"%(?:[!\d,]*)(?:\{([^}]*)\}([a-zA-Z])|([<>]?[a-zA-Z%]))")


def compile_format(spec: str | None) -> WebFormat:
    """Compile a format setting (shortcut name, nginx or Apache string, JSON) or raise
    FormatError naming what to fix."""
    text = (spec or DEFAULT).strip()
    if text in SHORTCUTS:
        shortcut = SHORTCUTS[text]
        return _compile_text(text, shortcut.format, shortcut.optional_tail, shortcut.trailing)
    if text == "json":
        return WebFormat(text, json_keys=_invert(DEFAULT_JSON_KEYS))
    template = _unquoted(re.sub(r"^escape=(?:json|default|none)\s+", "", text))
    if template.startswith("{"):
        return _compile_json_template(text, template)
    if "$" not in template and "%" not in template:
        names = ", ".join(sorted(SHORTCUTS))
        raise FormatError(
            f"web format {text!r} is neither a shortcut ({names}, json) nor a format string; "
            "give the nginx log_format or Apache LogFormat string the server writes"
        )
    return _compile_text(template, template, "", trailing=False)


def _unquoted(text: str) -> str:
    """A format pasted from the server's config as it stands there: nginx's quoted pieces
    (``'...' '...'``) joined as nginx joins them, Apache's outer quotes taken off."""
    if len(text) > 1 and text[0] == text[-1] == "'":
        return re.sub(r"'\s+'", "", text[1:-1])
    if len(text) > 1 and text[0] == text[-1] == '"' and '\\"' in text:
        return text[1:-1]
    return text


def _invert(keys: dict[str, str]) -> dict[str, str]:
    """known field -> key, the first key of each field winning."""
    known: dict[str, str] = {}
    for key, name in keys.items():
        known.setdefault(name, key)
    return known


def _compile_json_template(source: str, template: str) -> WebFormat:
    # Unquoted variables ("status":$status) are numbers in the log; quote them to parse.
    quoted = re.sub(r'"?(\$\{?\w+\}?)"?', r'"\1"', template)
    try:
        parsed = json.loads(quoted)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"web format {source!r} looks like a JSON log_format but is not a JSON object "
            f"({exc.msg} at character {exc.pos}); give it as nginx writes it, e.g. "
            '\'{"time":"$time_iso8601","status":$status}\''
        ) from exc
    keys: dict[str, str] = {}
    for key, value in parsed.items() if isinstance(parsed, dict) else []:
        match = NGINX_TOKEN.fullmatch(str(value).strip('"'))
        name = match and (match.group(1) or match.group(2))
        if name in NGINX_VARIABLES:
            keys.setdefault(NGINX_VARIABLES[name], key)
    return _checked(WebFormat(source, json_keys=keys))


def _compile_text(source: str, template: str, optional_tail: str, trailing: bool) -> WebFormat:
    syntax = _syntax(source, template)
    parts = ["^"]
    groups: dict[str, int] = {}
    count = 0
    marker: int | None = None
    for chunk, optional in ((template, False), (optional_tail, True)):
        if not chunk:
            continue
        if optional:
            count += 1
            marker = count
            parts.append("(?:(" + re.escape(chunk[0]) + ")")
            chunk = chunk[1:]
        regex, names, count = _fields(source, chunk, syntax, count)
        parts.append(regex)
        for name, group in names.items():
            groups.setdefault(name, group)
        if optional:
            parts.append(")?")
    parts.append(r"(?: .*+)?$" if trailing else "$")
    web_format = WebFormat(
        source,
        pattern="".join(parts),
        groups=groups,
        agent_marker=marker,
    )
    return _checked(web_format)


def _syntax(source: str, template: str) -> str:
    if NGINX_TOKEN.search(template):
        return "nginx"
    if "%" in template:
        return "apache"
    raise FormatError(f"web format {source!r} names no field; add $variables or %directives")


def _fields(source: str, template: str, syntax: str, count: int) -> tuple[str, dict[str, int], int]:
    """The regex of one run of literal text and variables, its known fields' groups, and
    the number of groups so far."""
    tokens = list((NGINX_TOKEN if syntax == "nginx" else APACHE_TOKEN).finditer(template))
    regex = []
    groups: dict[str, int] = {}
    position = 0
    for index, token in enumerate(tokens):
        literal = template[position : token.start()]
        regex.append(re.escape(_unescape(literal, syntax)))
        position = token.end()
        following = tokens[index + 1].start() if index + 1 < len(tokens) else len(template)
        after = _unescape(template[position:following], syntax)
        name = _known(source, token, syntax)
        if name == "%":
            regex.append("%")
            continue
        if not after and index + 1 < len(tokens):
            raise FormatError(
                f"web format {source!r}: {token.group(0)} and {tokens[index + 1].group(0)} "
                "touch, so no line can say where one ends; put a space or quote between them"
            )
        count += 1
        regex.append(_field_regex(name, syntax, after))
        if name:
            groups.setdefault(name, count)
    regex.append(re.escape(_unescape(template[position:], syntax)))
    return "".join(regex), groups, count


def _unescape(literal: str, syntax: str) -> str:
    # Apache's format strings are written inside quotes, with \" for a quote; nginx's too
    # when copied from a config with its outer quotes.
    return literal.replace('\\"', '"') if syntax == "apache" or '\\"' in literal else literal


def _field_regex(name: str | None, syntax: str, after: str) -> str:
    """A field's value runs up to the literal text after it: to the closing quote (skipping
    escaped quotes) or to the next delimiter (a space, or the end of the line)."""
    if name == "time_local" and syntax == "apache":
        return r"\[([^\]]*+)\]"  # Apache's %t writes its own brackets
    if name == "upstream_time" and after[:1] in ("", " "):
        # nginx separates the times of several upstreams with ", " (and " : " per group).
        return r"([^ ,]*+(?:(?:,| :) [^ ,]*+)*+)"
    if not after or after[0] == " ":
        return r"([^ ]*+)"  # up to the next space or the end: an extra field is no match
    if after[0] == ":":
        # `$remote_addr:$remote_port` (ALB): an IPv6 address holds colons itself, so the
        # field runs to the last colon before the next space (Athena's ALB regex does the
        # same). A single-character class backtracks in a loop: no recursion.
        return r"([^ ]*)"
    if after[0] == '"':
        return QUOTED
    return "([^" + re.escape(after[0]) + "]*+)"


def _known(source: str, token: re.Match[str], syntax: str) -> str | None:
    """The known field a variable carries, None for one kept only in the raw line, or
    ``%`` for Apache's literal percent sign."""
    if syntax == "nginx":
        return NGINX_VARIABLES.get(token.group(1) or token.group(2))
    header, kind, directive = token.group(1), token.group(2), token.group(3)
    if directive == "%":
        return "%"
    if header is not None:
        if kind == "i":
            return APACHE_HEADERS.get(header.lower())
        if kind == "t":
            raise FormatError(
                f"web format {source!r}: {token.group(0)} is a custom time format; log the "
                "time as %t (or nginx's $time_iso8601) so the job can read it"
            )
        return None
    if directive.lstrip("<>") not in "abfhilmpqrstuvBDHLOPRSTUVX":  # pragma: allowlist secret
        raise FormatError(
            f"web format {source!r}: {token.group(0)} is no Apache LogFormat directive; "
            "check the spelling (%h, %t, %r, %>s, %b, %{Header}i, ...)"
        )
    return APACHE_DIRECTIVES.get(directive)


def _checked(web_format: WebFormat) -> WebFormat:
    """A format the job can use: every request has a time and a target."""
    fields = web_format.fields
    if not fields & set(TIME_FIELDS):
        raise FormatError(
            f"web format {web_format.source!r} has no time field; add $time_local, "
            "$time_iso8601 or $msec (Apache: %t)"
        )
    if not fields & set(REQUEST_FIELDS):
        raise FormatError(
            f"web format {web_format.source!r} has no request field; add $request "
            '(Apache: "%r") or $request_uri (Apache: %U)'
        )
    if "status" not in fields:
        raise FormatError(
            f"web format {web_format.source!r} has no status field; add $status (Apache: %>s)"
        )
    return web_format
