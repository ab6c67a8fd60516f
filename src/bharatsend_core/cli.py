"""The ``bharatsend`` command: developer tools over the pure domain.

::

    bharatsend version
    bharatsend segment TEXT | - | --file PATH   [--max-segments N] [--reference-bits 8|16]
                                                [--show-parts] [--explain-ucs2]
    bharatsend phone NUMBER [--region IN] [--allow REGION ...]
    bharatsend template check BODY [--category transactional]
    bharatsend template match BODY TEXT
    bharatsend db upgrade
    bharatsend routes add NAME --host H --port P --system-id ID --password-env VAR [...]
    bharatsend routes list | show NAME | disable NAME | enable NAME
    bharatsend routes update NAME [--host H] [--port P] [--password-env VAR] [--tps N] [...]
    bharatsend tenants create NAME [--billing-point submit|delivery] | tenants list
    bharatsend keys create --tenant ID [--scope S ...] [--test] [--expires-in SECONDS] [--name N]
    bharatsend keys list --tenant ID | keys revoke --tenant ID KEY_ID
    bharatsend dlt import --tenant ID FILE.csv [--pe-id PE_ID]
    bharatsend templates list --tenant ID
    bharatsend topup --tenant ID PAISE [--reference REF] | balance --tenant ID
    bharatsend send --tenant ID --to PHONE --template TEMPLATE_ID --text TEXT [--header H]
                    [--client-message-id X] [--validity-seconds S] [--test]
    bharatsend send --tenant ID --csv FILE.csv [--report PATH] [--batch-size 500] [--test]
    bharatsend status MESSAGE_ID --tenant ID
    bharatsend worker [--poll-interval S] [--no-sandbox]
    bharatsend webhook-worker [--concurrency N]
    bharatsend smsc-sim [--port 2775] [--system-id bsend --password secret] [...]

Commands that touch the database read ``BHARATSEND_DATABASE_URL``;
``--database-url`` overrides it.

Every command takes ``--json``: the result is then one JSON object on stdout
instead of a human table. Exit codes:

* 0: success;
* 2: the input was refused (any client :class:`BharatSendError`, printed to
  stderr as ``error: <code>: <message>``, or as ``{"error": {...}}`` with
  ``--json``), and argparse usage errors (argparse's own code);
* 1: an unexpected failure (a bug, or a remote error in later commands), and
  server-side errors such as ``configuration_error`` (e.g. no key pepper);
* 3: ``send --csv`` accepted some rows and refused others (see its report).

Message content is never echoed unless asked for (``segment --show-parts``);
error messages come from the domain, which names offsets and template
literals instead of quoting the text. Nothing is logged.

Handlers are pure: they take the parsed arguments and return a
:class:`_Report`; :func:`main` alone writes to stdout and stderr (the one
exception is the progress of ``send --csv``, written to stderr as it goes). A new
command (``db upgrade``, ``worker``, ``smsc-sim``) is one ``_add_*`` function
that registers its parser and handler, appended to ``_COMMANDS``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TextIO, TypeAlias

from bharatsend_core import __version__
from bharatsend_core.demo import add_demo_parser
from bharatsend_core.domain.dlt import (
    Category,
    Placeholder,
    Template,
    check_template,
    compile_template,
)
from bharatsend_core.domain.encoding import Encoding, first_non_gsm7, segment
from bharatsend_core.domain.errors import BharatSendError, ClientError, InvalidArgument
from bharatsend_core.domain.keys import Scope
from bharatsend_core.domain.phone import parse_phone

__all__ = ["main"]

#: Exit code for refused input: a client error, like argparse's usage errors.
_EXIT_INVALID: Final = 2
#: Exit code for an unexpected failure.
_EXIT_FAILURE: Final = 1
#: Exit code of ``send --csv`` when some rows were refused (the others were accepted).
_EXIT_PARTIAL: Final = 3

_PROG: Final = "bharatsend"


@dataclass(frozen=True)
class _Report:
    """What a command produced: the ``--json`` object and the human rendering of it."""

    #: The JSON object printed with ``--json``.
    data: Mapping[str, Any]
    #: The human text printed otherwise (no trailing newline needed).
    text: str
    #: The process exit code.
    exit_code: int = 0
    #: Text for stderr in human mode only (``keys create``'s warning); not with ``--json``.
    notice: str = ""


_Handler = Callable[[argparse.Namespace], _Report]
_Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


# ----------------------------------------------------------------------------- rendering


def _table(rows: Iterable[tuple[str, object]]) -> str:
    """Two aligned columns: label, value (``None`` shows as ``-``)."""
    pairs = [(label, "-" if value is None else str(value)) for label, value in rows]
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"{label:<{width}}  {value}".rstrip() for label, value in pairs)


def _grid(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table with a header line; columns are as wide as their widest cell."""
    cells = [list(headers), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _quoted(text: str) -> str:
    """Text shown on one line with its exact edges: quoted, newlines and tabs escaped."""
    return json.dumps(text, ensure_ascii=False)


def _to_json(data: Mapping[str, Any]) -> str:
    # ASCII-only output cannot fail on a terminal or pipe with a narrow encoding.
    return json.dumps(data, indent=2, ensure_ascii=True)


# ----------------------------------------------------------------------------- input


def _decode_utf8(data: bytes, source: str) -> str:
    try:
        # utf-8-sig: a byte-order mark from an editor is an artefact, not message content.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidArgument(
            f"{source} is not valid UTF-8 (byte offset {e.start}); save it as UTF-8",
            field="text",
            detail={"offset": e.start},
        ) from None


def _drop_final_newline(text: str) -> str:
    """Drop the one line ending that ``echo`` and editors add after the last line."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _read_stdin() -> str:
    stream = sys.stdin
    if stream is None:
        raise InvalidArgument("there is no standard input to read the text from", field="text")
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        return _decode_utf8(buffer.read(), "standard input")
    return stream.read()


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InvalidArgument(
            f"cannot read {path!r}: {e.strerror or type(e).__name__}", field="file"
        ) from None
    return _decode_utf8(data, repr(path))


def _text_argument(text: str | None, path: str | None) -> str:
    """The message text from the argument, ``-`` (standard input) or ``--file``."""
    if (text is None) == (path is None):
        raise InvalidArgument(
            "give the text as an argument, '-' to read standard input, or --file PATH"
            " (exactly one of them)",
            field="text",
        )
    if path is not None:
        return _drop_final_newline(_read_file(path))
    if text == "-":
        return _drop_final_newline(_read_stdin())
    return text or ""


# ----------------------------------------------------------------------------- version


def _run_version(args: argparse.Namespace) -> _Report:
    """The installed package version."""
    return _Report({"name": "bharatsend-core", "version": __version__}, __version__)


def _add_version(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "version", parents=[common], help="print the bharatsend-core version"
    )
    parser.set_defaults(handler=_run_version)


# ----------------------------------------------------------------------------- segment


def _run_segment(args: argparse.Namespace) -> _Report:
    """Encoding and segmentation of a message text."""
    text = _text_argument(args.text, args.file)
    seg = segment(text, max_segments=args.max_segments, reference_bits=args.reference_bits)
    limit = (
        seg.encoding.max_part_units(seg.reference_bits)
        if seg.is_multipart
        else seg.encoding.max_single_units
    )
    unit_name = "septets" if seg.encoding is Encoding.GSM7 else "UTF-16 units"
    data: dict[str, Any] = {
        "encoding": seg.encoding.value,
        "data_coding": seg.data_coding,
        "units": seg.units,
        "segments": seg.segments,
        "part_units": list(seg.part_units),
        "units_per_part_limit": limit,
        "reference_bits": seg.reference_bits,
        "max_segments": args.max_segments,
    }
    rows: list[tuple[str, object]] = [
        ("encoding", seg.encoding.value),
        ("data_coding", seg.data_coding),
        ("units", f"{seg.units} {unit_name}"),
        ("segments", seg.segments),
        ("units per part", ", ".join(map(str, seg.part_units)) + f" (limit {limit})"),
        ("reference bits", seg.reference_bits),
    ]
    if args.explain_ucs2:
        found = first_non_gsm7(text) if seg.encoding is Encoding.UCS2 else None
        if found is None:
            data["ucs2_reason"] = None
            rows.append(("why ucs2", "not UCS-2: every character is in GSM 03.38"))
        else:
            offset, char = found
            codepoint = f"U+{ord(char):04X}"
            name = unicodedata.name(char, "<unnamed>")
            data["ucs2_reason"] = {"offset": offset, "codepoint": codepoint, "name": name}
            rows.append(("why ucs2", f"{codepoint} {name} at offset {offset} is not in GSM 03.38"))
    blocks = [_table(rows)]
    if args.show_parts:
        data["parts"] = list(seg.parts)
        blocks.append(
            _grid(
                ("part", "units", "text"),
                (
                    (n, units, _quoted(part))
                    for n, (part, units) in enumerate(
                        zip(seg.parts, seg.part_units, strict=True), start=1
                    )
                ),
            )
        )
    return _Report(data, "\n\n".join(blocks))


def _add_segment(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "segment",
        parents=[common],
        help="show how a text is encoded and split into SMS parts",
        description=(
            "Show the encoding (GSM-7 or UCS-2), data_coding, units and parts of a message."
            " Reading from '-' or --file drops one final line ending and a UTF-8 byte-order"
            " mark. The text itself is printed only with --show-parts."
        ),
    )
    parser.add_argument(
        "text", nargs="?", metavar="TEXT", help="the message text, or '-' for standard input"
    )
    parser.add_argument("--file", metavar="PATH", help="read the text from a UTF-8 file")
    parser.add_argument(
        "--max-segments",
        type=int,
        default=10,
        metavar="N",
        help="refuse texts needing more parts than this (1-255; default 10)",
    )
    parser.add_argument(
        "--reference-bits",
        type=int,
        choices=(8, 16),
        default=8,
        help="concatenation reference size: 8 (153/67 units per part) or 16 (152/66)",
    )
    parser.add_argument(
        "--show-parts", action="store_true", help="print the text of each part (off by default)"
    )
    parser.add_argument(
        "--explain-ucs2",
        action="store_true",
        help="name the first character that forces UCS-2 (offset, code point, Unicode name)",
    )
    parser.set_defaults(handler=_run_segment)


# ----------------------------------------------------------------------------- phone


def _run_phone(args: argparse.Namespace) -> _Report:
    """Parse a phone number the way the send path does."""
    allowed = frozenset(r.upper() for r in args.allow) if args.allow else frozenset({"IN"})
    number = parse_phone(args.number, default_region=args.region.upper(), allowed_regions=allowed)
    data = {
        "e164": number.e164,
        "national": number.national,
        "region": number.region,
        "country_code": number.country_code,
        "number_type": number.number_type.value,
        "operator_hint": number.operator,
    }
    text = _table(
        [
            ("e164", number.e164),
            ("national", number.national),
            ("region", number.region),
            ("number type", number.number_type.value),
            (
                "operator (hint)",
                f"{number.operator or 'unknown'}"
                " (series owner; numbers port, so never route or bill on it)",
            ),
        ]
    )
    return _Report(data, text)


def _add_phone(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "phone",
        parents=[common],
        help="parse a phone number into E.164 as the send path would",
        description=(
            "Parse a number as parse_phone does: SMS-capable numbers in the allowed"
            " regions only (India by default)."
        ),
    )
    parser.add_argument("number", metavar="NUMBER", help="the number as typed")
    parser.add_argument(
        "--region",
        default="IN",
        metavar="REGION",
        help="region for numbers without a country code (default IN)",
    )
    parser.add_argument(
        "--allow",
        nargs="+",
        action="extend",
        metavar="REGION",
        help="regions to accept (default: IN only); repeat or list several",
    )
    parser.set_defaults(handler=_run_phone)


# ----------------------------------------------------------------------------- template


def _placeholder_rows(placeholders: Iterable[Placeholder]) -> list[dict[str, Any]]:
    return [
        {
            "index": p.index + 1,
            "kind": p.kind.value,
            "token": p.kind.token,
            "offset": p.offset,
            "min_length": p.min_length,
            "max_length": p.max_length,
        }
        for p in placeholders
    ]


def _run_template_check(args: argparse.Namespace) -> _Report:
    """Registration-time checks of a template body."""
    category = Category.parse(args.category)
    # Dummy IDs: only the body and category matter to the checks run here.
    template = Template(template_id="1", entity_id="1", category=category, body=args.body)
    warnings = check_template(template)
    compiled = compile_template(template.body)
    placeholders = _placeholder_rows(compiled.placeholders)
    data = {
        "category": category.value,
        "placeholders": placeholders,
        "literal_length": compiled.literal_length,
        "min_length": compiled.min_length,
        "max_length": compiled.max_length,
        "warnings": [{"code": w.code, "message": w.message, "field": w.field} for w in warnings],
    }
    blocks = [
        _table(
            [
                ("category", category.value),
                ("placeholders", len(placeholders)),
                ("literal characters", compiled.literal_length),
                ("message length", f"{compiled.min_length}-{compiled.max_length} characters"),
                ("warnings", len(warnings)),
            ]
        )
    ]
    if placeholders:
        blocks.append(
            _grid(
                ("#", "kind", "offset", "min", "max"),
                (
                    (p["index"], p["token"], p["offset"], p["min_length"], p["max_length"])
                    for p in placeholders
                ),
            )
        )
    if warnings:
        blocks.append("\n".join(f"warning: {w.code}: {w.message}" for w in warnings))
    return _Report(data, "\n\n".join(blocks))


def _run_template_match(args: argparse.Namespace) -> _Report:
    """Match a text against a template body; the values, or the precise DLT error."""
    compiled = compile_template(args.body)
    values = compiled.verify(args.text)
    pairs = list(zip(compiled.placeholders, values, strict=True))
    data = {
        "matched": True,
        "values": [{"index": p.index + 1, "kind": p.kind.value, "value": v} for p, v in pairs],
    }
    text = "matched"
    if pairs:
        # The values are the caller's own input, shown back on their own terminal.
        text += "\n\n" + _grid(
            ("#", "kind", "value"), ((p.index + 1, p.kind.token, _quoted(v)) for p, v in pairs)
        )
    return _Report(data, text)


def _add_template(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("template", help="check DLT template bodies and match texts")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check",
        parents=[common],
        help="compile a template body and run the registration checks",
    )
    check.add_argument("body", metavar="BODY", help="the template body, placeholders included")
    check.add_argument(
        "--category",
        default="transactional",
        help="DLT category (transactional, service_implicit, service_explicit, promotional,"
        " government; portal spellings such as TXN accepted)",
    )
    check.set_defaults(handler=_run_template_check)

    match = actions.add_parser(
        "match",
        parents=[common],
        help="match a message text against a template body",
    )
    match.add_argument("body", metavar="BODY", help="the template body")
    match.add_argument("text", metavar="TEXT", help="the message text")
    match.set_defaults(handler=_run_template_match)


# ----------------------------------------------------------------------------- db


def _redact(url: str) -> str:
    """The URL without its password, for output."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def _open(args: argparse.Namespace) -> Any:
    """The facade for the database the arguments (or the environment) name."""
    from bharatsend_core.app import BharatSend

    url = getattr(args, "url", None) or getattr(args, "database_url", None)
    return BharatSend.from_url(url) if url else BharatSend.from_url()


def _run_db_upgrade(args: argparse.Namespace) -> _Report:
    """Create or upgrade the schema of the configured database."""
    bs = _open(args)
    try:
        bs.migrate()
    finally:
        bs.close()
    url = _redact(bs.settings.database_url)
    return _Report({"database_url": url, "migrated": True}, f"{url}: schema is up to date")


def _add_db(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("db", help="database schema commands")
    sub = parser.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    upgrade = sub.add_parser(
        "upgrade",
        parents=[common],
        help="create or upgrade the schema (idempotent)",
        description="Apply every pending migration to the database. The URL comes from"
        " --url, else BHARATSEND_DATABASE_URL, else sqlite:///bharatsend.db.",
    )
    upgrade.add_argument("--url", help="same as --database-url")
    upgrade.set_defaults(handler=_run_db_upgrade)


# ----------------------------------------------------------------------------- routes


def _tag(value: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TLV tag like 0x1400") from None


def _route_data(config: Any) -> dict[str, Any]:
    route = config.route
    return {
        "name": route.name,
        "enabled": route.enabled,
        "sandbox": route.sandbox,
        "priority": route.priority,
        "weight": route.weight,
        "tps": route.tps,
        "window": route.window,
        "categories": sorted(c.value for c in route.categories),
        "operators": sorted(route.operators),
        "prefixes": list(route.prefixes),
        "retry_permanent_elsewhere": route.retry_permanent_elsewhere,
        "connection": config.connection.public(),
    }


def _route_line(data: Mapping[str, Any]) -> str:
    conn = data["connection"]
    state = "enabled" if data["enabled"] else "disabled"
    categories = ",".join(data["categories"]) or "all"
    return (
        f"{data['name']:<16} {state:<8} p{data['priority']:<3} {conn['host']}:{conn['port']}"
        f" {conn['system_id']} {conn['bind']} tps={data['tps'] or '-'} window={data['window']}"
        f" categories={categories}"
    )


def _run_routes_add(args: argparse.Namespace) -> _Report:
    import os

    password = args.password
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise InvalidArgument(
                f"environment variable {args.password_env} is not set", field="password_env"
            )
    if password is None:
        raise InvalidArgument("give --password-env VAR (or --password)", field="password")
    tlvs = {"pe_id": args.dlt_pe_id_tag, "template_id": args.dlt_template_id_tag}
    if args.dlt_chain_tag is not None:
        tlvs["chain"] = args.dlt_chain_tag
    connection: dict[str, Any] = {
        "bind": args.bind,
        "system_type": args.system_type,
        "dlt_tlvs": tlvs,
        "tlv_nul_terminated": args.tlv_nul,
        "dlt_chain": args.dlt_chain,
        "id_mode": args.id_mode,
    }
    bs = _open(args)
    try:
        config = bs.add_route(
            args.name,
            host=args.host,
            port=args.port,
            system_id=args.system_id,
            password=password,
            tps=args.tps,
            window=args.window,
            categories=args.category or (),
            operators=args.operator or (),
            prefixes=args.prefix or (),
            priority=args.priority,
            weight=args.weight,
            sandbox=args.sandbox,
            retry_permanent_elsewhere=args.retry_permanent_elsewhere,
            **connection,
        )
    finally:
        bs.close()
    data = _route_data(config)
    return _Report(data, f"added route {_route_line(data)}")


def _run_routes_update(args: argparse.Namespace) -> _Report:
    import os

    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("system_id", args.system_id),
            ("tps", args.tps),
            ("window", args.window),
            ("priority", args.priority),
            ("weight", args.weight),
            ("id_mode", args.id_mode),
        )
        if value is not None
    }
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise InvalidArgument(
                f"environment variable {args.password_env} is not set", field="password_env"
            )
        changes["password"] = password
    if not changes:
        raise InvalidArgument("give at least one setting to change", field="settings")
    bs = _open(args)
    try:
        config = bs.update_route(args.name, **changes)
    finally:
        bs.close()
    data = _route_data(config)
    return _Report(data, f"updated route {_route_line(data)}")


def _run_routes_list(args: argparse.Namespace) -> _Report:
    bs = _open(args)
    try:
        routes = [_route_data(r) for r in bs.list_routes()]
    finally:
        bs.close()
    text = "\n".join(_route_line(r) for r in routes) or "no routes; add one with: routes add"
    return _Report({"routes": routes}, text)


def _run_routes_show(args: argparse.Namespace) -> _Report:
    bs = _open(args)
    try:
        data = _route_data(bs.get_route(args.name))
    finally:
        bs.close()
    return _Report(data, _to_json(data))


def _run_routes_enable(args: argparse.Namespace) -> _Report:
    bs = _open(args)
    try:
        config = bs.enable_route(args.name) if args.enable else bs.disable_route(args.name)
    finally:
        bs.close()
    data = _route_data(config)
    return _Report(data, _route_line(data))


def _add_routes(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("routes", help="carrier routes (SMPP binds)")
    sub = parser.add_subparsers(dest="routes_command", metavar="ROUTES_COMMAND", required=True)
    add = sub.add_parser(
        "add",
        parents=[common],
        help="add a route",
        description="Add an SMPP route. Workers bind it within their reload interval."
        " Pass the password through an environment variable (--password-env) so it"
        " stays out of shell history.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--host", required=True)
    add.add_argument("--port", type=int, required=True)
    add.add_argument("--system-id", required=True)
    add.add_argument("--password-env", metavar="VAR", help="read the password from $VAR")
    add.add_argument("--password", help=argparse.SUPPRESS)
    add.add_argument("--system-type", default="")
    add.add_argument("--bind", choices=("transceiver", "pair"), default="transceiver")
    add.add_argument("--tps", type=float, default=None, help="submits per second cap")
    add.add_argument("--window", type=int, default=10, help="submits in flight (default 10)")
    add.add_argument("--category", action="append", help="DLT category served (repeat)")
    add.add_argument("--operator", action="append", help="operator hint served (repeat)")
    add.add_argument("--prefix", action="append", help="E.164 prefix served, e.g. +9198")
    add.add_argument("--priority", type=int, default=0, help="lower is tried first")
    add.add_argument("--weight", type=int, default=100)
    add.add_argument("--sandbox", action="store_true", help="a sandbox-only route")
    add.add_argument("--retry-permanent-elsewhere", action="store_true")
    add.add_argument("--dlt-pe-id-tag", type=_tag, default=0x1400)
    add.add_argument("--dlt-template-id-tag", type=_tag, default=0x1401)
    add.add_argument("--dlt-chain-tag", type=_tag, default=None)
    add.add_argument(
        "--dlt-chain", default=None, help="the chain value sent in the chain TLV (DLT.md)"
    )
    add.add_argument("--tlv-nul", action="store_true", help="NUL-terminate DLT TLV values")
    add.add_argument(
        "--id-mode",
        choices=("exact", "lower_no_zeros", "hex_to_decimal", "decimal_to_hex"),
        default="exact",
    )
    add.set_defaults(handler=_run_routes_add)
    update = sub.add_parser(
        "update",
        parents=[common],
        help="change a route's settings",
        description="Change some settings of a route; workers rebind it at their next reload.",
    )
    update.add_argument("name", metavar="NAME")
    update.add_argument("--host")
    update.add_argument("--port", type=int)
    update.add_argument("--system-id")
    update.add_argument("--password-env", metavar="VAR", help="read the new password from $VAR")
    update.add_argument("--tps", type=float)
    update.add_argument("--window", type=int)
    update.add_argument("--priority", type=int)
    update.add_argument("--weight", type=int)
    update.add_argument(
        "--id-mode", choices=("exact", "lower_no_zeros", "hex_to_decimal", "decimal_to_hex")
    )
    update.set_defaults(handler=_run_routes_update)
    listing = sub.add_parser("list", parents=[common], help="list routes")
    listing.set_defaults(handler=_run_routes_list)
    show = sub.add_parser("show", parents=[common], help="one route in full (no password)")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(handler=_run_routes_show)
    for verb, enable in (("disable", False), ("enable", True)):
        cmd = sub.add_parser(verb, parents=[common], help=f"{verb} a route")
        cmd.add_argument("name", metavar="NAME")
        cmd.set_defaults(handler=_run_routes_enable, enable=enable)


# ----------------------------------------------------------------------------- admin helpers


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _rupees(paise: int) -> str:
    """Paise as ``INR 12.34`` (ASCII, exact: no float)."""
    rupees, rest = divmod(abs(paise), 100)
    return f"{'-' if paise < 0 else ''}INR {rupees}.{rest:02d}"


def _money(paise: int) -> dict[str, Any]:
    """An amount for JSON: exact paise, and rupees as a decimal string."""
    rupees, rest = divmod(abs(paise), 100)
    return {"paise": paise, "rupees": f"{'-' if paise < 0 else ''}{rupees}.{rest:02d}"}


def _mask_phone(phone: str) -> str:
    """All digits but the last four hidden: ``+91******3210``."""
    keep = phone[-4:]
    head = phone[:-4]
    return (
        head[:1] + "*" * (len(head) - 1) + keep if head.startswith("+") else "*" * len(head) + keep
    )


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _tenant_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenant", required=True, metavar="ID", help="the tenant id (tnt_...)")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must be at least 1")
    return number


# ----------------------------------------------------------------------------- tenants


def _tenant_data(tenant: Any) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "status": tenant.status.value,
        "billing_point": tenant.billing_point.value,
        "created_at": _iso(tenant.created_at),
    }


def _run_tenants_create(args: argparse.Namespace) -> _Report:
    with _open(args) as bs:
        tenant = bs.create_tenant(args.name, billing_point=args.billing_point)
    # Only the id on stdout, so scripts can do TENANT=$(bharatsend tenants create acme).
    return _Report(_tenant_data(tenant), tenant.id)


def _run_tenants_list(args: argparse.Namespace) -> _Report:
    with _open(args) as bs:
        tenants = [_tenant_data(t) for t in bs.list_tenants()]
    text = (
        _grid(
            ("id", "name", "status", "billing", "created"),
            (
                (t["id"], t["name"], t["status"], t["billing_point"], t["created_at"])
                for t in tenants
            ),
        )
        if tenants
        else "no tenants; add one with: tenants create NAME"
    )
    return _Report({"tenants": tenants}, text)


def _add_tenants(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("tenants", help="tenants (your customers)")
    sub = parser.add_subparsers(dest="tenants_command", metavar="TENANTS_COMMAND", required=True)
    create = sub.add_parser(
        "create",
        parents=[common],
        help="create a tenant and print its id",
        description="Create a tenant with an empty credit account and print its id"
        " (only the id, so a script can capture it).",
    )
    create.add_argument("name", metavar="NAME", help="a display name, 1-200 characters")
    create.add_argument(
        "--billing-point",
        choices=("submit", "delivery"),
        default=None,
        help="charge at carrier acceptance (submit) or at delivery"
        " (default: the billing_point setting, submit unless configured)",
    )
    create.set_defaults(handler=_run_tenants_create)
    listing = sub.add_parser("list", parents=[common], help="list every tenant")
    listing.set_defaults(handler=_run_tenants_list)


# ----------------------------------------------------------------------------- keys

#: Scopes a key gets when no --scope is given.
_DEFAULT_SCOPES: Final = ("sms:send", "sms:read")
_KEY_WARNING: Final = (
    "this is the only time the full key is shown: store it now (a secret manager);"
    " it cannot be shown again, only revoked and replaced"
)


def _key_state(key: Any, now: datetime) -> str:
    if key.revoked_at is not None and key.revoked_at <= now:
        return "revoked"
    if key.expires_at is not None and now >= key.expires_at:
        return "expired"
    return "active"


def _key_data(key: Any, now: datetime) -> dict[str, Any]:
    """Everything about a key a person may see: never the secret, never its hash."""
    return {
        "id": key.id,
        "prefix": key.prefix,
        "mode": key.mode.value,
        "name": key.name,
        "scopes": sorted(s.value for s in key.scopes),
        "state": _key_state(key, now),
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
    }


def _run_keys_create(args: argparse.Namespace) -> _Report:
    now = datetime.now(UTC)
    expires_at = None if args.expires_in is None else now + timedelta(seconds=args.expires_in)
    with _open(args) as bs:
        issued = bs.create_api_key(
            args.tenant,
            scopes=args.scope or _DEFAULT_SCOPES,
            mode="test" if args.test else "live",
            name=args.name,
            expires_at=expires_at,
        )
    data = {"key": issued.secret, **_key_data(issued.key, now), "warning": _KEY_WARNING}
    details = _table(
        [
            ("key id", issued.key.id),
            ("mode", issued.key.mode.value),
            ("scopes", " ".join(data["scopes"])),
            ("expires", data["expires_at"] or "never"),
        ]
    )
    # The key alone on stdout (KEY=$(bharatsend keys create ...)); the rest on stderr.
    return _Report(data, issued.secret, notice=f"{details}\nwarning: {_KEY_WARNING}")


def _run_keys_list(args: argparse.Namespace) -> _Report:
    now = datetime.now(UTC)
    with _open(args) as bs:
        bs.get_tenant(args.tenant)  # tenant_not_found rather than an empty list
        keys = [_key_data(k, now) for k in bs.list_api_keys(args.tenant)]
    text = (
        _grid(
            (
                "id",
                "prefix",
                "name",
                "scopes",
                "state",
                "created",
                "last used",
                "expires",
                "revoked",
            ),
            (
                (
                    k["id"],
                    k["prefix"],
                    k["name"] or "-",
                    ",".join(k["scopes"]),
                    k["state"],
                    k["created_at"],
                    k["last_used_at"] or "never",
                    k["expires_at"] or "never",
                    k["revoked_at"] or "-",
                )
                for k in keys
            ),
        )
        if keys
        else "no API keys; issue one with: keys create --tenant ID"
    )
    return _Report({"keys": keys}, text)


def _run_keys_revoke(args: argparse.Namespace) -> _Report:
    now = datetime.now(UTC)
    with _open(args) as bs:
        key = bs.revoke_api_key(args.tenant, args.key_id)
    data = _key_data(key, now)
    return _Report(data, f"revoked {key.prefix} at {data['revoked_at']}")


def _add_keys(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("keys", help="API keys of a tenant")
    sub = parser.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
    scopes = tuple(s.value for s in Scope)
    create = sub.add_parser(
        "create",
        parents=[common],
        help="issue an API key (the full key is printed once)",
        description="Issue an API key. The full key (bs_live_... or bs_test_...) is printed"
        " on stdout this once and never again: only a keyed hash is stored. Details and"
        " the warning go to stderr. Needs the key_pepper setting (BHARATSEND_KEY_PEPPER).",
    )
    _tenant_argument(create)
    create.add_argument(
        "--scope",
        nargs="+",
        action="extend",
        choices=scopes,
        metavar="SCOPE",
        help=f"what the key may do; repeat or list several ({', '.join(scopes)};"
        f" default: {' '.join(_DEFAULT_SCOPES)})",
    )
    create.add_argument(
        "--test",
        action="store_true",
        help="a test key (bs_test_...): its messages only ever reach the sandbox carrier",
    )
    create.add_argument(
        "--expires-in",
        type=_positive_int,
        metavar="SECONDS",
        help="the key stops working this many seconds from now (default: never)",
    )
    create.add_argument("--name", default="", help="a label to recognise the key by")
    create.set_defaults(handler=_run_keys_create)
    listing = sub.add_parser(
        "list",
        parents=[common],
        help="list a tenant's keys (never a secret)",
        description="Id, prefix, name, scopes, state, and when each key was created, last"
        " used, expires and was revoked. Neither secrets nor hashes are shown.",
    )
    _tenant_argument(listing)
    listing.set_defaults(handler=_run_keys_list)
    revoke = sub.add_parser(
        "revoke",
        parents=[common],
        help="revoke a key at once",
        description="Revoke a key: it fails authentication from this moment. Revoking twice"
        " keeps the first time.",
    )
    _tenant_argument(revoke)
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key id, as keys list shows it")
    revoke.set_defaults(handler=_run_keys_revoke)


# ----------------------------------------------------------------------------- dlt import


def _read_bytes(path: str, field: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgument(
            f"cannot read {path!r}: {e.strerror or type(e).__name__}", field=field
        ) from None


def _run_dlt_import(args: argparse.Namespace) -> _Report:
    raw = _read_bytes(args.file, "file")
    with _open(args) as bs:
        report = bs.import_dlt_csv(args.tenant, raw, pe_id=args.pe_id)
    counts = {
        "created": len(report.created),
        "updated": len(report.updated),
        "unchanged": len(report.unchanged),
        "skipped": len(report.skipped),
        "entities_created": len(report.entities_created),
        "headers_created": len(report.headers_created),
        "headers_updated": len(report.headers_updated),
        "warnings": len(report.warnings),
    }
    warnings = [
        {"line": w.line, "column": w.column, "code": w.code, "message": w.message}
        for w in report.warnings
    ]
    skipped = [
        {"line": n.line, "template_id": n.template_id, "reason": n.reason} for n in report.skipped
    ]
    data = {
        "counts": counts,
        "created": list(report.created),
        "updated": list(report.updated),
        "unchanged": list(report.unchanged),
        "entities_created": list(report.entities_created),
        "headers_created": list(report.headers_created),
        "headers_updated": list(report.headers_updated),
        "warnings": warnings,
        "skipped": skipped,
    }
    blocks = [
        _table(
            [
                ("templates created", counts["created"]),
                ("templates updated", counts["updated"]),
                ("templates unchanged", counts["unchanged"]),
                ("rows skipped", counts["skipped"]),
                ("entities created", counts["entities_created"]),
                ("headers created", counts["headers_created"]),
                ("headers updated", counts["headers_updated"]),
                ("warnings", counts["warnings"]),
            ]
        )
    ]
    if skipped:
        blocks.append(
            "\n".join(
                f"skipped: line {n['line']}: {n['template_id']}: {n['reason']}" for n in skipped
            )
        )
    if warnings:
        blocks.append("\n".join(f"warning: {_row_line(w)}" for w in warnings))
    return _Report(data, "\n\n".join(blocks))


def _row_line(row: Mapping[str, Any]) -> str:
    """``line 3, column 'Header': code: message`` for a DLT CSV row error or warning."""
    where = f"line {row.get('line')}"
    if row.get("column"):
        where += f", column {row['column']!r}"
    return f"{where}: {row.get('code')}: {row.get('message')}"


def _add_dlt(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("dlt", help="import DLT portal exports")
    sub = parser.add_subparsers(dest="dlt_command", metavar="DLT_COMMAND", required=True)
    imp = sub.add_parser(
        "import",
        parents=[common],
        help="import a DLT portal template CSV (all rows or none)",
        description="Import the template CSV exported from a DLT portal (Jio, Airtel, Vi,"
        " BSNL...): entities and headers it names are registered, templates created or"
        " updated, in one transaction. A file with any faulty row imports nothing: every"
        " error is listed by line (exit code 2).",
    )
    _tenant_argument(imp)
    imp.add_argument("file", metavar="FILE.csv", help="the CSV as downloaded from the portal")
    imp.add_argument(
        "--pe-id",
        metavar="PE_ID",
        help="the tenant's principal entity id; rows of another entity are errors"
        " (default: the tenant's only registered entity, else the file's)",
    )
    imp.set_defaults(handler=_run_dlt_import)


# ----------------------------------------------------------------------------- templates list

_BODY_WIDTH: Final = 60


def _template_data(template: Any) -> dict[str, Any]:
    return {
        "template_id": template.template_id,
        "entity_id": template.entity_id,
        "headers": sorted(template.headers),
        "category": template.category.value,
        "content_type": template.content_type.value,
        "active": template.active,
        "name": template.name,
        "body": template.body,
    }


def _run_templates_list(args: argparse.Namespace) -> _Report:
    with _open(args) as bs:
        bs.get_tenant(args.tenant)
        templates = [_template_data(t) for t in bs.list_templates(args.tenant)]
    text = (
        _grid(
            ("template id", "header", "category", "active", "body"),
            (
                (
                    t["template_id"],
                    ",".join(t["headers"]) or "-",
                    t["category"],
                    "yes" if t["active"] else "no",
                    # Bodies are registered templates, not messages: shown, on one line.
                    _quoted(_shorten(t["body"], _BODY_WIDTH)),
                )
                for t in templates
            ),
        )
        if templates
        else "no templates; import them with: dlt import --tenant ID FILE.csv"
    )
    return _Report({"templates": templates}, text)


def _add_templates(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("templates", help="a tenant's registered DLT templates")
    sub = parser.add_subparsers(
        dest="templates_command", metavar="TEMPLATES_COMMAND", required=True
    )
    listing = sub.add_parser(
        "list",
        parents=[common],
        help="list a tenant's templates",
        description=f"Template id, headers, category, whether active, and the body cut to"
        f" {_BODY_WIDTH} characters (--json gives everything, whole bodies included).",
    )
    _tenant_argument(listing)
    listing.set_defaults(handler=_run_templates_list)


# ----------------------------------------------------------------------------- credits


def _balance_data(balance: Any) -> dict[str, Any]:
    return {
        "tenant_id": balance.tenant_id,
        "available": _money(balance.available_paise),
        "posted": _money(balance.posted_paise),
        "pending": _money(balance.reserved_paise),
    }


def _balance_rows(balance: Any) -> list[tuple[str, object]]:
    return [
        (label, f"{_rupees(paise)}  ({paise} paise)")
        for label, paise in (
            ("available", balance.available_paise),
            ("posted", balance.posted_paise),
            ("pending (reserved)", balance.reserved_paise),
        )
    ]


def _run_topup(args: argparse.Namespace) -> _Report:
    with _open(args) as bs:
        transfer = bs.top_up(args.tenant, args.paise, reference=args.reference)
        balance = bs.balance(args.tenant)
    data = {
        "transfer_id": transfer.id,
        "amount": _money(transfer.amount),
        "reference": transfer.reference,
        "created_at": _iso(transfer.created_at),
        "balance": _balance_data(balance),
    }
    text = _table(
        [
            ("added", f"{_rupees(transfer.amount)}  ({transfer.amount} paise)"),
            ("transfer", transfer.id),
            ("reference", transfer.reference),
            *_balance_rows(balance),
        ]
    )
    return _Report(data, text)


def _run_balance(args: argparse.Namespace) -> _Report:
    with _open(args) as bs:
        balance = bs.balance(args.tenant)
    return _Report(_balance_data(balance), _table(_balance_rows(balance)))


def _add_credits(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    topup = commands.add_parser(
        "topup",
        parents=[common],
        help="add credits to a tenant (in paise)",
        description="Add credits in paise (100 paise = 1 rupee). With --reference (your"
        " payment id) running it again is a no-op, so a retried top-up never pays twice.",
    )
    _tenant_argument(topup)
    topup.add_argument(
        "paise", type=_positive_int, metavar="PAISE", help="the amount in paise, e.g. 50000"
    )
    topup.add_argument("--reference", metavar="REF", help="your payment id (idempotency key)")
    topup.set_defaults(handler=_run_topup)
    balance = commands.add_parser(
        "balance",
        parents=[common],
        help="a tenant's credits",
        description="Available (what can be spent), posted (charged) and pending (reserved"
        " for messages not yet settled), in rupees and paise.",
    )
    _tenant_argument(balance)
    balance.set_defaults(handler=_run_balance)


# ----------------------------------------------------------------------------- send

#: The columns a bulk-send CSV must have, and those it may have.
_CSV_REQUIRED: Final = ("phone_number", "content", "dlt_template_id")
_CSV_OPTIONAL: Final = ("header", "client_message_id", "validity_seconds")
_REPORT_COLUMNS: Final = (
    "line",
    "phone_number",
    "client_message_id",
    "error_code",
    "error_message",
    "field",
)
_MAX_BATCH: Final = 1000


def _send_data(result: Any) -> dict[str, Any]:
    message = result.message
    return {
        "id": message.id,
        "status": message.status.value,
        "replayed": result.replayed,
        "segments": message.segments,
        "encoding": message.encoding,
        "price": _money(message.price_paise),
        "sandbox": message.sandbox,
        "client_message_id": message.client_message_id,
        "warnings": [{"code": w.code, "message": w.message} for w in result.warnings],
    }


def _run_send(args: argparse.Namespace) -> _Report:
    if args.csv is not None:
        single = [
            f"--{name.replace('_', '-')}"
            for name in ("to", "template", "text", "header", "client_message_id",
                         "validity_seconds")
            if getattr(args, name) is not None
        ]  # fmt: skip
        if single:
            raise InvalidArgument(
                f"--csv sends the file's rows; {', '.join(single)} belong to a single message"
                " (put them in the CSV's columns)",
                field="csv",
            )
        return _send_csv(args)
    missing = [f"--{n}" for n in ("to", "template", "text") if getattr(args, n) is None]
    if missing:
        raise InvalidArgument(
            f"give {', '.join(missing)} for one message, or --csv FILE.csv for many",
            field=missing[0].removeprefix("--"),
        )
    content = _text_argument(args.text, None)
    with _open(args) as bs:
        result = bs.send(
            args.tenant,
            phone_number=args.to,
            content=content,
            dlt_template_id=args.template,
            header=args.header,
            client_message_id=args.client_message_id,
            validity_seconds=args.validity_seconds,
            sandbox=args.test,
        )
    data = _send_data(result)
    rows: list[tuple[str, object]] = [
        ("id", data["id"]),
        ("status", data["status"] + (" (replayed: accepted earlier)" if result.replayed else "")),
        ("segments", f"{data['segments']} ({data['encoding']})"),
        ("price", f"{_rupees(result.message.price_paise)}  ({result.message.price_paise} paise)"),
    ]
    if result.message.sandbox:
        rows.append(("sandbox", "yes: only the sandbox carrier will see it"))
    blocks = [_table(rows)]
    if result.warnings:
        blocks.append("\n".join(f"warning: {w.code}: {w.message}" for w in result.warnings))
    return _Report(data, "\n\n".join(blocks))


@dataclass(frozen=True)
class _CsvRow:
    """One data row of a bulk-send file: its request, or why it cannot be one."""

    line: int
    phone_number: str
    client_message_id: str
    request: Mapping[str, Any] | None
    error: BharatSendError | None = None


def _default_report_path(path: str) -> str:
    base = path[:-4] if path.lower().endswith(".csv") else path
    return base + ".errors.csv"


def _read_send_csv(path: str) -> list[_CsvRow]:
    """Every data row of a bulk-send CSV; a missing column or unreadable file is fatal."""
    text = _read_file(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidArgument(
                f"{path!r} is empty; its first line names the columns"
                f" ({', '.join(_CSV_REQUIRED)}, optional {', '.join(_CSV_OPTIONAL)})",
                field="csv",
            )
        names = [name.strip().lower() for name in header]
        missing = [c for c in _CSV_REQUIRED if c not in names]
        if missing:
            raise InvalidArgument(
                f"{path!r} has no {', '.join(map(repr, missing))}"
                f" column{'s' if len(missing) > 1 else ''}"
                f" (required: {', '.join(_CSV_REQUIRED)}; optional: {', '.join(_CSV_OPTIONAL)})",
                field=missing[0],
            )
        duplicated = sorted({n for n in names if n and names.count(n) > 1})
        if duplicated:
            raise InvalidArgument(
                f"{path!r} has the column {duplicated[0]!r} twice", field=duplicated[0]
            )
        rows: list[_CsvRow] = []
        previous = reader.line_num
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            rows.append(_csv_row(line, names, cells))
    except csv.Error as e:
        raise InvalidArgument(
            f"{path!r} is not readable CSV near line {reader.line_num}: {e}", field="csv"
        ) from None
    if not rows:
        raise InvalidArgument(f"{path!r} has no data rows", field="csv")
    return rows


def _csv_row(line: int, names: Sequence[str], cells: Sequence[str]) -> _CsvRow:
    values = dict(zip(names, cells, strict=False))
    phone = values.get("phone_number", "").strip()
    client_id = values.get("client_message_id", "").strip()
    if len(cells) != len(names):
        error = InvalidArgument(
            f"the row has {len(cells)} cells but the header names {len(names)} columns",
            field="row",
        )
        return _CsvRow(line, phone, client_id, None, error)
    validity_text = values.get("validity_seconds", "").strip()
    validity: int | None = None
    if validity_text:
        try:
            validity = int(validity_text)
        except ValueError:
            error = InvalidArgument(
                "validity_seconds must be a whole number of seconds", field="validity_seconds"
            )
            return _CsvRow(line, phone, client_id, None, error)
    request = {
        "phone_number": phone,
        # The content is exact: DLT matching is character for character.
        "content": values["content"],
        "dlt_template_id": values["dlt_template_id"].strip(),
        "header": values.get("header", "").strip() or None,
        "client_message_id": client_id or None,
        "validity_seconds": validity,
    }
    return _CsvRow(line, phone, client_id, request)


def _batch_size(value: str) -> int:
    number = _positive_int(value)
    if number > _MAX_BATCH:
        raise argparse.ArgumentTypeError(f"a batch holds at most {_MAX_BATCH} rows")
    return number


class _Progress:
    """Bulk-send progress on stderr: a redrawn bar on a terminal, plain lines otherwise."""

    _WIDTH: Final = 30

    def __init__(self, total: int, stream: TextIO | None, *, plain: bool) -> None:
        self._total = max(total, 1)
        self._stream = stream
        self._tty = _isatty(stream)
        # Without a terminal, lines are printed only when wanted (not with --json).
        self._enabled = stream is not None and (self._tty or plain)

    def update(self, done: int, accepted: int, replayed: int, failed: int) -> None:
        if not self._enabled or self._stream is None:
            return
        counts = f"accepted {accepted}, replayed {replayed}, failed {failed}"
        if self._tty:
            filled = self._WIDTH * done // self._total
            bar = "#" * filled + "-" * (self._WIDTH - filled)
            percent = 100 * done // self._total
            end = "\n" if done >= self._total else ""
            self._stream.write(f"\r[{bar}] {percent:3d}% {done}/{self._total} rows; {counts}{end}")
        else:
            self._stream.write(f"progress: {done}/{self._total} rows; {counts}\n")
        self._stream.flush()


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def _send_csv(args: argparse.Namespace) -> _Report:
    rows = _read_send_csv(args.csv)
    report_path = args.report or _default_report_path(args.csv)
    if os.path.abspath(report_path) == os.path.abspath(args.csv):
        raise InvalidArgument("the report would overwrite the input file", field="report")
    accepted = replayed = failed = price = 0
    progress = _Progress(len(rows), None if args.no_progress else sys.stderr, plain=not args.json)
    with _open(args) as bs:
        bs.get_tenant(args.tenant)  # an unknown tenant is fatal before any report is written
        try:
            report_file = open(report_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            raise InvalidArgument(
                f"cannot write the report {report_path!r}: {e.strerror or type(e).__name__}",
                field="report",
            ) from None
        with report_file:
            writer = csv.writer(report_file)
            writer.writerow(_REPORT_COLUMNS)

            for start in range(0, len(rows), args.batch_size):
                chunk = rows[start : start + args.batch_size]
                errors = [(row, row.error) for row in chunk if row.error is not None]
                ready = [row for row in chunk if row.request is not None]
                if ready:
                    result = bs.send_batch(
                        args.tenant, [row.request for row in ready], sandbox=args.test
                    )
                    for row, item in zip(ready, result.items, strict=True):
                        if item.result is None:
                            errors.append((row, item.error))
                        elif item.result.replayed:
                            replayed += 1
                        else:
                            accepted += 1
                            price += item.result.message.price_paise
                failed += len(errors)
                errors.sort(key=lambda pair: pair[0].line)
                writer.writerows(
                    (row.line, row.phone_number, row.client_message_id, err.code, err.message,
                     err.field or "")
                    for row, err in errors
                )  # fmt: skip
                report_file.flush()
                progress.update(start + len(chunk), accepted, replayed, failed)
    data = {
        "rows": len(rows),
        "accepted": accepted,
        "replayed": replayed,
        "failed": failed,
        "price": _money(price),
        "sandbox": args.test,
        "report": report_path,
    }
    summary = f"accepted {accepted}, replayed {replayed}, failed {failed} (report: {report_path})"
    return _Report(data, summary, exit_code=_EXIT_PARTIAL if failed else 0)


def _add_send(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "send",
        parents=[common],
        help="send one message, or many from a CSV file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Accept messages for sending (a worker submits them).\n\n"
            "One message:  send --tenant ID --to PHONE --template TEMPLATE_ID --text TEXT\n"
            "Many:         send --tenant ID --csv FILE.csv [--report errors.csv]\n\n"
            "The CSV's first line names its columns (any case, spaces around are ignored):\n"
            f"  required: {', '.join(_CSV_REQUIRED)}\n"
            f"  optional: {', '.join(_CSV_OPTIONAL)}\n"
            "Rows go through send_batch in batches; each refused row is written to the\n"
            f"report CSV ({', '.join(_REPORT_COLUMNS)}),\n"
            "by default FILE.errors.csv beside the input. Progress goes to stderr.\n"
            "Message content is never printed.\n\n"
            "exit codes: 0 every message accepted (or replayed); 3 some CSV rows failed\n"
            "(see the report); 2 refused input (an unreadable file, a missing column, an\n"
            "unknown tenant, a refused single message); 1 an unexpected failure."
        ),
    )
    _tenant_argument(parser)
    one = parser.add_argument_group("one message")
    one.add_argument("--to", metavar="PHONE", help="the destination number (+91..., or national)")
    one.add_argument("--template", metavar="TEMPLATE_ID", help="the DLT template id")
    one.add_argument("--text", metavar="TEXT", help="the message text ('-' reads standard input)")
    one.add_argument(
        "--header", metavar="H", help="the sender id (default: the template's only one)"
    )
    one.add_argument("--client-message-id", metavar="X", help="your id; a retry with it replays")
    one.add_argument("--validity-seconds", type=_positive_int, metavar="S")
    many = parser.add_argument_group("many messages")
    many.add_argument("--csv", metavar="FILE.csv", help="send every row of this UTF-8 CSV")
    many.add_argument(
        "--report", metavar="PATH", help="where refused rows go (default: FILE.errors.csv)"
    )
    many.add_argument(
        "--batch-size",
        type=_batch_size,
        default=500,
        metavar="N",
        help=f"rows per send_batch call (1-{_MAX_BATCH}; default 500)",
    )
    many.add_argument(
        "--no-progress",
        action="store_true",
        help="print no progress on stderr (neither the bar nor the plain lines)",
    )
    parser.add_argument(
        "--test",
        action="store_true",
        help="sandbox messages: free, and only the sandbox carrier ever sees them",
    )
    parser.set_defaults(handler=_run_send)


# ----------------------------------------------------------------------------- status


def _message_data(message: Any) -> dict[str, Any]:
    """A message without its content, the phone number masked."""
    error = message.error
    return {
        "id": message.id,
        "tenant_id": message.tenant_id,
        "client_message_id": message.client_message_id,
        "status": message.status.value,
        "phone": _mask_phone(message.phone),
        "template_id": message.template_id,
        "header": message.header,
        "entity_id": message.entity_id,
        "category": message.category,
        "encoding": message.encoding,
        "segments": message.segments,
        "price": _money(message.price_paise),
        "sandbox": message.sandbox,
        "priority": message.priority,
        "route": message.route,
        "attempts": message.attempts,
        "possible_duplicate": message.possible_duplicate,
        "created_at": _iso(message.created_at),
        "updated_at": _iso(message.updated_at),
        "expires_at": _iso(message.expires_at),
        "next_attempt_at": _iso(message.next_attempt_at),
        "error": None
        if error is None
        else {"code": error.code, "reason": error.reason.value, "carrier_code": error.carrier_code},
        "parts": [
            {
                "part": part.index + 1,
                "status": part.status.value,
                "carrier_message_id": part.carrier_message_id,
                "route": part.route,
                "submitted_at": _iso(part.submitted_at),
                "final_at": _iso(part.final_at),
                "error_code": part.error_code,
                "outcome_unknown": part.outcome_unknown,
            }
            for part in message.parts
        ],
        "timeline": [
            {
                "sequence": entry.sequence,
                "at": _iso(entry.at),
                "kind": entry.kind,
                "status": entry.status.value,
                "detail": dict(entry.detail),
            }
            for entry in message.timeline
        ],
    }


def _run_status(args: argparse.Namespace) -> _Report:
    with _open(args) as bs:
        message = bs.get_message(args.tenant, args.message_id)
    data = _message_data(message)
    error = data["error"]
    rows: list[tuple[str, object]] = [
        ("id", data["id"]),
        ("status", data["status"]),
        ("phone", data["phone"]),
        ("template", data["template_id"]),
        ("header", data["header"]),
        ("segments", f"{data['segments']} ({data['encoding']})"),
        ("price", f"{_rupees(message.price_paise)}  ({message.price_paise} paise)"),
        ("route", data["route"]),
        ("created", data["created_at"]),
        ("expires", data["expires_at"]),
        (
            "error",
            None
            if error is None
            else f"{error['code']} ({error['reason']}"
            + (f", carrier code {error['carrier_code']}" if error["carrier_code"] else "")
            + ")",
        ),
    ]
    if data["sandbox"]:
        rows.append(("sandbox", "yes"))
    if data["possible_duplicate"]:
        rows.append(("possible duplicate", "yes: a part may have been sent twice"))
    blocks = [
        _table(rows),
        _grid(
            ("part", "status", "carrier id", "route", "error"),
            (
                (
                    p["part"],
                    p["status"],
                    p["carrier_message_id"] or "-",
                    p["route"] or "-",
                    p["error_code"] or "-",
                )
                for p in data["parts"]
            ),
        ),
        _grid(
            ("time", "event", "status", "detail"),
            (
                (
                    e["at"],
                    e["kind"],
                    e["status"],
                    " ".join(f"{k}={'-' if v is None else v}" for k, v in e["detail"].items())
                    or "-",
                )
                for e in data["timeline"]
            ),
        ),
    ]
    return _Report(data, "\n\n".join(blocks))


def _add_status(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "status",
        parents=[common],
        help="where a message is: parts, carrier ids, timeline",
        description="A message's status, masked phone number, template, segments, each part"
        " with its carrier id and status, the error if any, and the timeline. The content"
        " is never shown; --json gives the whole structure.",
    )
    parser.add_argument("message_id", metavar="MESSAGE_ID", help="the message id (msg_...)")
    _tenant_argument(parser)
    parser.set_defaults(handler=_run_status)


# ----------------------------------------------------------------------------- report

_DELIVERY_COLUMNS: Final = (
    "dimension", "key", "messages", "delivered", "failed", "pending", "delivery_rate",
    "p50_ms", "p90_ms", "p99_ms", "failure_codes",
)  # fmt: skip


def _when(text: str, now: datetime, name: str) -> datetime:
    """An ISO 8601 date/time (UTC when no zone), or a span back from now: 90m, 24h, 7d."""
    units = {"m": 60, "h": 3600, "d": 86400}
    raw = text.strip()
    if raw[:-1].isdigit() and raw[-1:] in units:
        return now - timedelta(seconds=int(raw[:-1]) * units[raw[-1]])
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument(
            f"--{name} takes an ISO 8601 date or time (2026-11-01, 2026-11-01T09:30+05:30)"
            " or a span back from now (90m, 24h, 7d)",
            field=name,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _report_row(row: Any) -> dict[str, Any]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "dimension": row.dimension,
        "key": row.key,
        "messages": row.messages,
        "delivered": row.delivered,
        "failed": row.failed,
        "pending": row.pending,
        "delivery_rate": None if row.delivery_rate is None else round(row.delivery_rate, 4),
        "p50_ms": ms(row.latency_p50_ms),
        "p90_ms": ms(row.latency_p90_ms),
        "p99_ms": ms(row.latency_p99_ms),
        "failure_codes": dict(row.failure_codes),
    }


def report_period(since: str, until: str | None) -> tuple[datetime, datetime]:
    """``--since``/``--until`` as instants (until defaults to now); ``InvalidArgument`` if bad."""
    now = datetime.now(UTC)
    start = _when(since, now, "since")
    end = _when(until, now, "until") if until else now
    if start >= end:
        raise InvalidArgument("--since must be before --until", field="since")
    return start, end


def render_report(report: Any, tenant: str | None, fmt: str) -> tuple[dict[str, Any], str]:
    """A ``DeliveryReport`` as ``bharatsend report`` prints it: the JSON data, and the text
    for ``fmt`` (``table``, ``csv`` or ``json``). ``manage.py bharatsend_report`` shares it.
    """
    since, until = report.since, report.until
    rows = [_report_row(report.total), *(_report_row(r) for r in report.rows)]
    data = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "tenant_id": tenant,
        "rows": rows,
    }
    if fmt == "json":
        return data, _to_json(data)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_DELIVERY_COLUMNS)
        for row in rows:
            joined = ";".join(f"{k}={v}" for k, v in row["failure_codes"].items())
            writer.writerow([*(row[c] for c in _DELIVERY_COLUMNS[:-1]), joined])
        return data, out.getvalue().rstrip("\n")

    def cell(value: Any, suffix: str = "") -> str:
        return "-" if value is None else f"{value}{suffix}"

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    def codes(value: Mapping[str, int]) -> str:
        top = list(value.items())[:3]
        more = len(value) - len(top)
        text = ", ".join(f"{k} {v}" for k, v in top)
        return text + (f", +{more} more" if more > 0 else "")

    grid = _grid(
        ("by", "key", "msgs", "delivered", "failed", "pending", "rate", "p50", "p90", "p99",
         "failure codes"),
        [
            (r["dimension"], r["key"], r["messages"], r["delivered"], r["failed"], r["pending"],
             rate(r["delivery_rate"]), cell(r["p50_ms"], " ms"), cell(r["p90_ms"], " ms"),
             cell(r["p99_ms"], " ms"), codes(r["failure_codes"]))
            for r in rows
        ],
    )  # fmt: skip
    scope = f"tenant {tenant}" if tenant else "all tenants"
    head = f"messages created {since.isoformat()} .. {until.isoformat()} ({scope})"
    return data, f"{head}\n\n{grid}"


def _run_report(args: argparse.Namespace) -> _Report:
    since, until = report_period(args.since, args.until)
    with _open(args) as bs:
        report = bs.delivery_report(since=since, until=until, tenant_id=args.tenant)
    data, text = render_report(report, args.tenant, args.format)
    return _Report(data, text)


def _add_report(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "report",
        parents=[common],
        help="delivery rate, latency percentiles and failure codes by route, operator, template",
        description="Delivery figures of the messages created in a period, overall and by"
        " route, operator (of the number series; ported numbers count under their original"
        " operator) and template: delivered, failed, pending, delivery rate (delivered of"
        " final), accepted-to-delivered latency percentiles (nearest rank), and the most"
        " frequent failure codes.",
    )
    parser.add_argument(
        "--since", default="24h", help="start: ISO 8601 date/time or 90m/24h/7d back (24h)"
    )
    parser.add_argument("--until", default=None, help="end (exclusive); default now")
    parser.add_argument("--tenant", default=None, help="one tenant (default: all tenants)")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    parser.set_defaults(handler=_run_report)


# ----------------------------------------------------------------------------- worker


def _run_worker(args: argparse.Namespace) -> _Report:
    import logging

    from bharatsend_core.adapters.system import parse_cpu_list, pin_process
    from bharatsend_core.service.receipts import check_receipt_threads

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    check_receipt_threads(args.receipt_threads)  # refused before the database is opened
    # Pinned before anything starts; a bad list is refused before the database is opened.
    if args.cpus is not None:
        pinned = pin_process(parse_cpu_list(args.cpus))
        logging.getLogger(__name__).info("worker: pinned to CPUs %s", sorted(pinned))
    bs = _open(args)
    try:
        worker = bs.worker(
            sandbox_carrier=not args.no_sandbox,
            poll_interval=args.poll_interval,
            receipt_threads=args.receipt_threads,
        )
        worker.run()
        stats = worker.health().stats
    finally:
        bs.close()
    data = {"owner": worker.owner, "sent": stats.sent, "failed": stats.failed}
    return _Report(data, f"worker {worker.owner} stopped: {stats.sent} sent, {stats.failed} failed")


def _add_worker(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "worker",
        parents=[common],
        help="run a dispatch worker until SIGTERM/SIGINT",
        description="Bind every enabled route, submit accepted messages, ingest receipts."
        " SIGTERM drains in-flight submits and exits cleanly.",
    )
    parser.add_argument("--poll-interval", type=float, default=0.5, help="idle poll (seconds)")
    parser.add_argument(
        "--no-sandbox", action="store_true", help="do not run the built-in sandbox SMSC"
    )
    parser.add_argument(
        "--receipt-threads",
        type=int,
        default=1,
        metavar="N",
        help="threads ingesting delivery receipts, 1 to 8 (default 1; on PostgreSQL 2 let one"
        " worker ingest about 40%% more, docs/operations.md)",
    )
    parser.add_argument(
        "--cpus",
        metavar="LIST",
        help="pin the worker process to these CPUs (1, 0,2 or 0-3; Linux): one is what a"
        " worker uses, and it runs faster pinned to it (docs/operations.md)",
    )
    parser.set_defaults(handler=_run_worker)


def _run_webhook_worker(args: argparse.Namespace) -> _Report:
    import logging
    import signal
    import threading

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    bs = _open(args)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    deliverer = bs.webhook_deliverer(concurrency=args.concurrency)
    attempts = 0
    try:
        while not stop.is_set():
            handled = deliverer.run_once()
            attempts += handled
            if not handled:
                stop.wait(args.poll_interval)
    finally:
        deliverer.close()
        bs.close()
    data = {"attempts": attempts, "delivered": deliverer.delivered, "dead": deliverer.dead}
    return _Report(
        data, f"webhook worker stopped: {attempts} attempts, {deliverer.delivered} delivered"
    )


def _add_webhook_worker(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "webhook-worker",
        parents=[common],
        help="deliver webhooks only, until SIGTERM/SIGINT",
        description="Deliver the webhook outbox without dispatching SMS (the worker"
        " command does both).",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests at once")
    parser.add_argument("--poll-interval", type=float, default=0.5, help="idle poll (seconds)")
    parser.set_defaults(handler=_run_webhook_worker)


# ----------------------------------------------------------------------------- smsc-sim


def _run_smsc_sim(args: argparse.Namespace) -> _Report:
    import signal
    import threading

    from bharatsend_core.adapters.smpp.simulator import Behaviour, SmscSimulator

    behaviour = Behaviour(
        final_state=args.final_state,
        error_code=args.error_code,
        throttle_tps=args.throttle_tps,
        reject_prefixes=tuple(args.reject_prefix or ()),
        require_tlvs=tuple(args.require_tlv or ()),
    )
    sim = SmscSimulator(
        port=args.port,
        credentials={args.system_id: args.password},
        receipt_delay=args.receipt_delay,
        behaviour=behaviour,
        record_limit=1000,
    ).start()
    print(f"SMSC simulator on 127.0.0.1:{sim.port} (system_id {args.system_id}); Ctrl-C stops")
    sys.stdout.flush()
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    data = {"port": sim.port, "submits": len(sim.submits), "receipts": len(sim.receipts)}
    return _Report(data, f"stopped after {data['submits']} submits, {data['receipts']} receipts")


def _add_smsc_sim(commands: _Subparsers, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "smsc-sim",
        parents=[common],
        help="run the local SMSC simulator (loopback only)",
        description="An SMPP 3.4 SMSC for development: binds, submit_sm_resp, receipts.",
    )
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--system-id", default="bsend")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--receipt-delay", type=float, default=0.05)
    parser.add_argument(
        "--final-state", default="DELIVRD", choices=("DELIVRD", "UNDELIV", "EXPIRED", "REJECTD")
    )
    parser.add_argument("--error-code", default="000")
    parser.add_argument("--throttle-tps", type=int, default=None)
    parser.add_argument("--reject-prefix", action="append")
    parser.add_argument("--require-tlv", type=_tag, action="append")
    parser.set_defaults(handler=_run_smsc_sim)


# ----------------------------------------------------------------------------- parser

#: Each registers one top-level command and its handler; a new command is one more entry.
_COMMANDS: Final[tuple[Callable[[_Subparsers, argparse.ArgumentParser], None], ...]] = (
    _add_version,
    _add_segment,
    _add_phone,
    _add_template,
    _add_db,
    _add_routes,
    _add_tenants,
    _add_keys,
    _add_dlt,
    _add_templates,
    _add_credits,
    _add_send,
    _add_status,
    _add_report,
    _add_worker,
    _add_webhook_worker,
    _add_smsc_sim,
    add_demo_parser,
)


_EPILOG: Final = """\
Commands that touch the database read BHARATSEND_DATABASE_URL (--database-url
overrides it). --json prints one JSON object instead of a table.

exit codes:
  0  success
  1  unexpected failure, or a server-side error (configuration_error, ...)
  2  refused input: an error printed as 'error: <code>: <message>' (a JSON
     envelope with --json), or an argparse usage error
  3  send --csv: some rows were refused (listed in the report), the rest accepted
"""


def _build_parser() -> argparse.ArgumentParser:
    # --json lives on every leaf command so it can follow the command's arguments.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    common.add_argument(
        "--database-url",
        default=None,
        help="database URL (default: BHARATSEND_DATABASE_URL, else sqlite:///bharatsend.db)",
    )

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Developer and operator tools for bharatsend-core: SMS encoding, phone"
        " numbers, DLT, routes, tenants, API keys, credits, sending and message status.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback",
        "--debug",
        dest="traceback",
        action="store_true",
        help="on an unexpected failure, show the full traceback (it may quote input)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(commands, common)
    return parser


# ----------------------------------------------------------------------------- errors


def _render_error(err: BharatSendError, as_json: bool) -> str:
    """``error: <code>: <message>`` plus field and detail lines, or the JSON envelope."""
    if as_json:
        return _to_json({"error": err.to_dict()})
    lines = [f"error: {err.code}: {err.message}"]
    if err.field is not None:
        lines.append(f"  field: {err.field}")
    for key, value in err.detail.items():
        if isinstance(value, list) and all(isinstance(v, Mapping) and "line" in v for v in value):
            # Row errors (dlt_csv_invalid): one line each, by line number.
            lines.append(f"  {key}:")
            lines.extend(f"    {_row_line(row)}" for row in value)
        else:
            lines.append(f"  {key}: {_quoted(value) if isinstance(value, str) else value}")
    return "\n".join(lines)


def _emit(stream: TextIO, text: str) -> None:
    stream.write(text if text.endswith("\n") else text + "\n")


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bharatsend`` command line and return its exit code.

    ``argv`` defaults to ``sys.argv[1:]``. Never raises ``SystemExit``: usage
    errors and ``--help`` return argparse's exit code (2 and 0).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else _EXIT_INVALID)

    as_json = bool(getattr(args, "json", False))
    handler: _Handler = args.handler
    try:
        report = handler(args)
    except BharatSendError as err:
        _emit(sys.stderr, _render_error(err, as_json))
        return _EXIT_INVALID if isinstance(err, ClientError) else _EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        if args.traceback:
            raise
        # The exception text may quote input (message content), so only its type is shown.
        message = (
            f"unexpected {type(err).__name__}; this is a bug in bharatsend-core"
            " (rerun with --traceback for details)"
        )
        body = {"code": "internal_error", "message": message, "field": None}
        _emit(
            sys.stderr,
            _to_json({"error": body}) if as_json else f"error: internal_error: {message}",
        )
        return _EXIT_FAILURE
    _emit(sys.stdout, _to_json(report.data) if as_json else report.text)
    if report.notice and not as_json:
        _emit(sys.stderr, report.notice)
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
