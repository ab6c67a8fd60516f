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
* 1: an unexpected failure (a bug, or a remote error in later commands).

Message content is never echoed unless asked for (``segment --show-parts``);
error messages come from the domain, which names offsets and template
literals instead of quoting the text. Nothing is logged.

Handlers are pure: they take the parsed arguments and return a
:class:`_Report`; :func:`main` alone writes to stdout and stderr. A new
command (``db upgrade``, ``worker``, ``smsc-sim``) is one ``_add_*`` function
that registers its parser and handler, appended to ``_COMMANDS``.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO, TypeAlias

from bharatsend_core import __version__
from bharatsend_core.domain.dlt import (
    Category,
    Placeholder,
    Template,
    check_template,
    compile_template,
)
from bharatsend_core.domain.encoding import Encoding, first_non_gsm7, segment
from bharatsend_core.domain.errors import BharatSendError, ClientError, InvalidArgument
from bharatsend_core.domain.phone import parse_phone

__all__ = ["main"]

#: Exit code for refused input: a client error, like argparse's usage errors.
_EXIT_INVALID: Final = 2
#: Exit code for an unexpected failure.
_EXIT_FAILURE: Final = 1

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


# ----------------------------------------------------------------------------- worker


def _run_worker(args: argparse.Namespace) -> _Report:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    bs = _open(args)
    try:
        worker = bs.worker(sandbox_carrier=not args.no_sandbox, poll_interval=args.poll_interval)
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
    _add_worker,
    _add_webhook_worker,
    _add_smsc_sim,
)


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
        description="Developer tools for bharatsend-core: SMS encoding, phone numbers, DLT.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback",
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
    lines.extend(
        f"  {key}: {_quoted(value) if isinstance(value, str) else value}"
        for key, value in err.detail.items()
    )
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
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
