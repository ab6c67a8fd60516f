"""Read the template CSV a DLT portal exports into domain values: all of it, or nothing.

Tenants register their templates on an operator's DLT portal (Jio, Airtel,
Vodafone Idea, BSNL...) and download them as CSV; importing that file is how
templates reach bharatsend. :func:`parse_dlt_csv` is sans-I/O: it takes the
file's bytes (or text) and returns a :class:`DltCsvImport`, or raises
:class:`~bharatsend_core.domain.errors.DltCsvInvalid` listing every faulty row
(line, column, DLT error code, what to do). A partially valid file returns
nothing, so the caller imports all templates or none and a tenant never ends up
with half a registry that matches neither the portal nor the file.

What it tolerates, because portals and spreadsheet programs differ:

* **Encoding.** UTF-8 with or without BOM; UTF-16 with BOM (Excel's "Unicode
  Text"); if UTF-8 decoding fails, Windows-1252 (Excel's plain "CSV"), noted in
  :attr:`DltCsvImport.encoding` and with a warning on line 1, because Excel
  writes ``?`` for every character outside Windows-1252 (Hindi bodies are lost).
* **Delimiter.** ``,``, ``;`` or tab, sniffed from the header line alone: the
  delimiter under which most cells are known column names wins. (The stdlib
  ``csv.Sniffer`` looks at data rows too, and template bodies full of commas and
  semicolons mislead it.) Excel's ``sep=;`` first line is honoured.
* **Column names** compared case-, space-, underscore- and punctuation-
  insensitively (``TEMPLATE_ID`` = ``Template Id`` = ``template-id``), with the
  variants of DLT.md and a few more (:data:`COLUMN_ALIASES`). Unknown columns
  are ignored.
* **Category and content type: the "Content Type" ambiguity.** Portals disagree
  on what "Content Type" (and "Template Type") means: some put the DLT category
  there (Transactional, Service Implicit), others the encoding (Text/Unicode).
  So every column named like either (Template Type, Category, Template
  Category, Content Type, Message Type, Type, Template Content Type) is a
  *kind* column, and each of its cells is read **by value**: a value
  ``ContentType.parse`` accepts (Text, Unicode, UCS2, Regional...) is the
  content type; a value ``Category.parse`` accepts (Transactional, TXN, SI,
  Service-Explicit, PML...) is the category. The two vocabularies are disjoint,
  so a cell is never both. A row needs exactly one category (two different ones
  is an error). Without a content type, it is inferred from the body: GSM-7
  text is ``text``, anything else ``unicode``; a body registered as ``text``
  that is not GSM-7 earns a ``dlt_encoding_mismatch`` warning (every message
  would fail). A cell that is neither (an industry "Category" such as
  "Banking", a "Template Type" such as "Content Template") is ignored, with one
  warning per column, unless its row has no category: then it is reported as
  the unknown category.
* **Status.** Approved, Active or empty: imported. Rejected, Inactive,
  Deactivated, Pending and the like: skipped, each with a :class:`RowNote`.
  Anything else is an error (a status we do not know must not be guessed).
* **IDs.** Surrounding whitespace, Excel's text tricks (``="1107..."`` and a
  leading apostrophe) are removed. An ID Excel turned into a number
  (``1.10716E+18``, ``1107161234567890000.0``) has lost digits for good: that
  is an error asking to export the column as text, and a 19-digit ID ending in
  zeros after the 15th digit (Excel keeps 15) earns a warning.
* **Headers.** One or several per cell, separated by ``,``, ``;``, ``|``,
  ``/`` or white space.

**Bodies are exact.** A template body is kept character for character as the
cell holds it (the csv module only removes the quoting): no trimming, no
newline folding, curly quotes stay curly, because DLT matching is exact and a
trimmed space would make every message fail with ``dlt_template_mismatch``.

Each template is built as a domain :class:`Template` and checked with
:func:`check_template` under the given policy; its errors become row errors
with their own code and its warnings :class:`RowWarning`. Headers are derived
from the templates that use them (DLT.md: numeric headers carry promotional
templates only, alphabetic headers anything but promotional).

Line numbers are physical lines as an editor shows them (the header line is 1),
counted by the csv reader, so a body spanning three lines moves the next row
three lines down; an error is reported on the first line of its row.

Row-error codes are the domain's own (``dlt_template_invalid``,
``dlt_header_invalid``, ``dlt_entity_invalid``, ``dlt_entity_unknown`` for a
row of another PE ID than ``tenant_pe_id``, ``dlt_template_malformed``,
``dlt_template_no_variable``, ``dlt_template_header_mismatch``,
``dlt_header_category_mismatch``...) or, for problems of the file itself,
``dlt_csv_missing_column`` (line 1), ``dlt_csv_duplicate`` (a template ID seen
on an earlier line, skipped rows included), ``dlt_csv_bad_value`` (unreadable
bytes or quoting, a wrong cell count, an unknown status, two columns for one
role, contradicting categories) and ``dlt_csv_too_many_rows``.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NoReturn, TypeVar

from attrs import frozen

from bharatsend_core.domain.dlt.registry import (
    Category,
    ContentType,
    Header,
    Template,
    validate_entity_id,
    validate_sender_id,
    validate_template_id,
)
from bharatsend_core.domain.dlt.rules import DEFAULT_POLICY, DltPolicy, check_template
from bharatsend_core.domain.encoding import first_non_gsm7
from bharatsend_core.domain.errors import (
    BharatSendError,
    DltCsvInvalid,
    DltEntityInvalid,
    DltEntityUnknown,
    DltHeaderCategoryMismatch,
    DltHeaderInvalid,
    DltTemplateHeaderMismatch,
    DltTemplateInvalid,
    InvalidArgument,
)

__all__ = [
    "COLUMN_ALIASES",
    "MAX_REPORTED_ERRORS",
    "Column",
    "DltCsvImport",
    "RowError",
    "RowNote",
    "RowWarning",
    "parse_dlt_csv",
]

#: How many row errors ``DltCsvInvalid.detail["errors"]`` lists (``error_count`` has them all).
MAX_REPORTED_ERRORS: Final = 100

# Row-error codes for problems of the file rather than of a DLT value.
_DUPLICATE: Final = "dlt_csv_duplicate"
_MISSING_COLUMN: Final = "dlt_csv_missing_column"
_BAD_VALUE: Final = "dlt_csv_bad_value"
_TOO_MANY_ROWS: Final = "dlt_csv_too_many_rows"


class Column(enum.Enum):
    """What a column of the export holds (its role), whatever the portal calls it."""

    TEMPLATE_ID = "template id"
    BODY = "template body"
    HEADER = "header"
    KIND = "category / content type"
    STATUS = "status"
    ENTITY = "entity (PE ID)"
    NAME = "template name"


def _key(name: str) -> str:
    """A column name reduced to lower-case letters and digits: ``TEMPLATE_ID`` -> ``templateid``."""
    return "".join(c for c in name.casefold() if c.isalnum())


#: Known column names per role, as :func:`_key` reduces them.
COLUMN_ALIASES: Final[Mapping[Column, frozenset[str]]] = {
    Column.TEMPLATE_ID: frozenset(
        {"templateid", "contenttemplateid", "ctid", "dlttemplateid", "dltcontenttemplateid"}
    ),
    Column.BODY: frozenset(
        {
            "templatecontent",
            "templatemessage",
            "content",
            "message",
            "templatebody",
            "body",
            "templatetext",
            "messagecontent",
            "smscontent",
        }
    ),
    Column.HEADER: frozenset(
        {"header", "headers", "senderid", "senderids", "headername", "headernames", "sender"}
    ),
    Column.KIND: frozenset(
        {
            "templatetype",
            "category",
            "templatecategory",
            "dltcategory",
            "contenttype",
            "messagetype",
            "type",
            "smstype",
            "templatecontenttype",
        }
    ),
    Column.STATUS: frozenset({"status", "templatestatus", "approvalstatus"}),
    Column.ENTITY: frozenset({"entityid", "peid", "principalentityid", "dltentityid", "dltpeid"}),
    Column.NAME: frozenset({"templatename", "name"}),
}

# Kind columns whose name cannot mean the category: they do not satisfy "category is required".
_CONTENT_TYPE_ONLY: Final = frozenset({"templatecontenttype"})

_ROLE_OF: Final[Mapping[str, Column]] = {
    alias: role for role, aliases in COLUMN_ALIASES.items() for alias in aliases
}

_REQUIRED: Final = (Column.TEMPLATE_ID, Column.BODY, Column.KIND, Column.HEADER)

_IMPORTED_STATUSES: Final = frozenset({"", "approved", "approve", "active", "live", "enabled"})
_SKIPPED_STATUSES: Final[Mapping[str, str]] = {
    "rejected": "rejected on the DLT portal",
    "pending": "not approved yet",
    "pendingapproval": "not approved yet",
    "awaitingapproval": "not approved yet",
    "underreview": "not approved yet",
    "inreview": "not approved yet",
    "submitted": "not approved yet",
    "inprogress": "not approved yet",
    "inactive": "deactivated on the DLT portal",
    "deactivated": "deactivated on the DLT portal",
    "deactive": "deactivated on the DLT portal",
    "disabled": "deactivated on the DLT portal",
    "suspended": "deactivated on the DLT portal",
    "blocked": "deactivated on the DLT portal",
    "expired": "deactivated on the DLT portal",
    "deleted": "deactivated on the DLT portal",
}

# A number as Excel writes a long ID it has turned into a float: the digits are gone.
_EXCEL_NUMBER_RE: Final = re.compile(r"[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+|[0-9]+[.,]0+")
_EXCEL_TEXT_RE: Final = re.compile(r'="(.*)"')
_HEADER_SPLIT_RE: Final = re.compile(r"[,;|/\s]+")
_SEP_LINE_RE: Final = re.compile(r'"?sep=(.)"?', re.IGNORECASE)
_DELIMITERS: Final = (",", ";", "\t")
_T = TypeVar("_T")
# Excel keeps 15 significant digits; a longer ID it rounded ends in zeros.
_EXCEL_DIGITS: Final = 15


@frozen
class RowError:
    """One fault in the file: where (line, column), which DLT or CSV code, and what to do."""

    line: int
    column: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used in ``DltCsvInvalid.detail["errors"]``."""
        return {
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


@frozen
class RowWarning:
    """A rule that fired without stopping the import (``check_template`` warnings and notes)."""

    line: int
    column: str | None
    code: str
    message: str


@frozen
class RowNote:
    """A row deliberately not imported (a rejected or pending template) and why."""

    line: int
    template_id: str
    reason: str


@frozen
class DltCsvImport:
    """Everything a valid export holds, ready to store in one transaction.

    ``headers`` has one :class:`Header` per sender ID, its category taken from
    the templates linked to it (numeric headers are promotional); ``entities``
    the distinct PE IDs of the imported templates, in file order; ``rows`` the
    number of non-empty data rows read (imported and skipped); ``encoding`` how
    the bytes were decoded (``None`` when text was given) and ``delimiter`` the
    one sniffed.
    """

    templates: tuple[Template, ...]
    headers: tuple[Header, ...]
    entities: tuple[str, ...]
    warnings: tuple[RowWarning, ...]
    skipped: tuple[RowNote, ...]
    rows: int
    encoding: str | None = None
    delimiter: str = ","


def parse_dlt_csv(
    data: str | bytes,
    *,
    tenant_pe_id: str | None = None,
    policy: DltPolicy = DEFAULT_POLICY,
    max_rows: int = 50_000,
) -> DltCsvImport:
    """Parse a DLT portal's template export; return every template or raise ``DltCsvInvalid``.

    ``tenant_pe_id`` is the importing tenant's PE ID: rows of another entity
    are errors (``dlt_entity_unknown``), and the entity column may then be
    absent or empty. ``policy`` drives ``check_template`` (which body rules
    are errors, how many headers a template may have). More than ``max_rows``
    data rows is an error: an export that large is almost certainly the wrong
    file, and it bounds the work one request can cause.
    """
    if tenant_pe_id is not None:
        validate_entity_id(tenant_pe_id, field="tenant_pe_id")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise InvalidArgument("max_rows must be a positive integer", field="max_rows")
    text, encoding = _decode(data)
    return _Import(text, encoding, tenant_pe_id, policy, max_rows).run()


# ---------------------------------------------------------------- decoding


def _decode(data: str | bytes) -> tuple[str, str | None]:
    if isinstance(data, str):
        return data.removeprefix("\ufeff"), None
    if not isinstance(data, bytes):
        raise InvalidArgument("data must be str or bytes", field="data")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _decode_as(data, "utf-16", "UTF-16").removeprefix("\ufeff"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        if data.startswith(b"\xef\xbb\xbf"):
            _raise_undecodable(data, utf8_error, "UTF-8 (it starts with a UTF-8 byte order mark)")
    return _decode_as(data, "cp1252", "UTF-8 or Windows-1252"), "cp1252"


def _decode_as(data: bytes, codec: str, what: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as error:
        _raise_undecodable(data, error, what)


def _raise_undecodable(data: bytes, error: UnicodeDecodeError, what: str) -> NoReturn:
    line = data.count(b"\n", 0, error.start) + 1
    byte = data[error.start]
    row = RowError(
        line,
        None,
        _BAD_VALUE,
        f"the file is not valid {what}: byte 0x{byte:02X} cannot be decoded; export it"
        " again as 'CSV UTF-8'",
    )
    raise _invalid([row])


# ---------------------------------------------------------------- the import


@frozen
class _Accepted:
    line: int
    template: Template
    headers: tuple[str, ...]
    header_column: str


class _Import:
    """One run over one file: collects every error before deciding."""

    def __init__(
        self,
        text: str,
        encoding: str | None,
        tenant_pe_id: str | None,
        policy: DltPolicy,
        max_rows: int,
    ) -> None:
        self.text = text
        self.encoding = encoding
        self.tenant_pe_id = tenant_pe_id
        self.policy = policy
        self.max_rows = max_rows
        self.errors: list[RowError] = []
        self.warnings: list[RowWarning] = []
        self.skipped: list[RowNote] = []
        self.accepted: list[_Accepted] = []
        self.names: list[str] = []
        self.columns: dict[Column, int] = {}
        self.kind_columns: list[int] = []
        self.ignored_kind_values: dict[int, str] = {}
        self.seen_ids: dict[str, int] = {}
        self.rows = 0

    # -- driver

    def run(self) -> DltCsvImport:
        if self.encoding == "cp1252":
            self.warnings.append(
                RowWarning(
                    1,
                    None,
                    "dlt_csv_encoding",
                    "the file is not UTF-8; it was read as Windows-1252 (Excel's plain 'CSV'"
                    " format), which cannot hold Hindi or other Indian scripts: export as"
                    " 'CSV UTF-8' if any template is Unicode",
                )
            )
        delimiter, sep_line = _sniff(self.text)
        records = self._records(delimiter)
        header = self._header_record(records, sep_line)
        if header is None:
            self._fail_now(RowError(1, None, _MISSING_COLUMN, "the file is empty"))
        line, cells = header
        self._map_columns(line, cells)
        if self.errors:
            raise _invalid(self.errors)
        for line, cells in records:
            if not any(c.strip() for c in cells):
                continue
            self.rows += 1
            if self.rows > self.max_rows:
                self._error(
                    line,
                    None,
                    _TOO_MANY_ROWS,
                    f"the file has more than {self.max_rows} template rows; split it or"
                    " raise max_rows",
                )
                break
            self._row(line, cells)
        headers = self._headers()
        if self.errors:
            raise _invalid(self.errors)
        for index, value in self.ignored_kind_values.items():
            self.warnings.append(
                RowWarning(
                    1,
                    self.names[index],
                    "dlt_csv_column_ignored",
                    f"values such as {value!r} in column {self.names[index]!r} are neither a"
                    " DLT category nor a content type; they were ignored",
                )
            )
        templates = tuple(a.template for a in self.accepted)
        return DltCsvImport(
            templates=templates,
            headers=headers,
            entities=tuple(dict.fromkeys(t.entity_id for t in templates)),
            warnings=tuple(sorted(self.warnings, key=lambda w: w.line)),
            skipped=tuple(self.skipped),
            rows=self.rows,
            encoding=self.encoding,
            delimiter=delimiter,
        )

    def _records(self, delimiter: str) -> Iterator[tuple[int, list[str]]]:
        """Rows with the physical line they start on; a csv syntax error ends the file."""
        reader = csv.reader(io.StringIO(self.text, newline=""), delimiter=delimiter, strict=True)
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                self._error(
                    start,
                    None,
                    _BAD_VALUE,
                    f"the row cannot be read as CSV ({error}); a cell holding the delimiter,"
                    " a line break or a double quote must be in double quotes, with inner"
                    ' quotes doubled ("")',
                )
                return
            yield start, cells

    def _header_record(
        self, records: Iterator[tuple[int, list[str]]], sep_line: bool
    ) -> tuple[int, list[str]] | None:
        for line, cells in records:
            if not any(c.strip() for c in cells):
                continue
            if sep_line:
                sep_line = False
                continue
            return line, cells
        if self.errors:
            raise _invalid(self.errors)
        return None

    def _map_columns(self, line: int, cells: list[str]) -> None:
        self.names = [c.strip() for c in cells]
        for index, name in enumerate(self.names):
            role = _ROLE_OF.get(_key(name))
            if role is None:
                continue
            if role is Column.KIND:
                self.kind_columns.append(index)
                if _key(name) not in _CONTENT_TYPE_ONLY:
                    self.columns.setdefault(Column.KIND, index)
                continue
            if role in self.columns:
                first = self.names[self.columns[role]]
                self._error(
                    line,
                    name,
                    _BAD_VALUE,
                    f"columns {first!r} and {name!r} both name the {role.value}; rename or"
                    " remove one",
                )
                continue
            self.columns[role] = index
        missing = [role for role in _REQUIRED if role not in self.columns]
        if Column.ENTITY not in self.columns and self.tenant_pe_id is None:
            missing.append(Column.ENTITY)
        if missing:
            wanted = "; ".join(f"{role.value} ({_example_names(role)})" for role in missing)
            found = ", ".join(repr(n) for n in self.names if n) or "none"
            self.errors.insert(
                0,
                RowError(
                    line,
                    None,
                    _MISSING_COLUMN,
                    f"required column(s) missing: {wanted}. Columns found: {found}",
                ),
            )

    # -- one row

    def _cell(self, cells: list[str], role: Column) -> str | None:
        index = self.columns.get(role)
        if index is None:
            return None
        return cells[index] if index < len(cells) else ""

    def _name(self, role: Column) -> str | None:
        index = self.columns.get(role)
        return None if index is None else self.names[index]

    def _row(self, line: int, cells: list[str]) -> None:
        used = [*self.columns.values(), *self.kind_columns]
        if len(cells) < len(self.names) and max(used) >= len(cells):
            self._error(
                line,
                None,
                _BAD_VALUE,
                f"the row has {len(cells)} cells but the header line names {len(self.names)}"
                " columns; a cell holding the delimiter or a line break must be in double"
                " quotes",
            )
            return
        extra = [c for c in cells[len(self.names) :] if c.strip()]
        if extra:
            self._error(
                line,
                None,
                _BAD_VALUE,
                f"the row has {len(cells)} cells but the header line names {len(self.names)}"
                f" columns (extra value {extra[0]!r}); a cell holding the delimiter must be"
                " in double quotes",
            )
            return
        errors_before = len(self.errors)
        raw_id = _clean_id(self._cell(cells, Column.TEMPLATE_ID) or "")
        if raw_id and not _EXCEL_NUMBER_RE.fullmatch(raw_id):
            earlier = self.seen_ids.get(raw_id)
            if earlier is not None:
                self._error(
                    line,
                    self._name(Column.TEMPLATE_ID),
                    _DUPLICATE,
                    f"template ID {raw_id} already appears on line {earlier}; list each"
                    " template once (several headers go in one cell, separated by ',')",
                )
                return
            self.seen_ids[raw_id] = line
        skip_reason = self._status(line, cells)
        if skip_reason is not None:
            self.skipped.append(RowNote(line, raw_id, skip_reason))
            return
        template_id = self._template_id(line, raw_id)
        entity_id = self._entity(line, cells)
        headers = self._header_ids(line, cells)
        category, content_type = self._kind(line, cells)
        body = self._cell(cells, Column.BODY) or ""
        if not body:
            self._error(
                line,
                self._name(Column.BODY),
                DltTemplateInvalid.code,
                "the template body is empty",
            )
        if (
            len(self.errors) > errors_before
            or template_id is None
            or entity_id is None
            or headers is None
            or category is None
        ):
            return
        self._template(line, template_id, entity_id, category, content_type, body, headers, cells)

    def _status(self, line: int, cells: list[str]) -> str | None:
        raw = self._cell(cells, Column.STATUS)
        if raw is None:
            return None
        key = _key(raw)
        if key in _IMPORTED_STATUSES:
            return None
        reason = _SKIPPED_STATUSES.get(key)
        if reason is not None:
            return f"status {raw.strip()!r}: {reason}"
        self._error(
            line,
            self._name(Column.STATUS),
            _BAD_VALUE,
            f"unknown status {raw.strip()!r}: Approved, Active or empty is imported; Rejected,"
            " Inactive, Deactivated or Pending is skipped",
        )
        return None

    def _template_id(self, line: int, raw: str) -> str | None:
        column = self._name(Column.TEMPLATE_ID)
        return self._id(line, raw, column, "template ID", validate_template_id, DltTemplateInvalid)

    def _entity(self, line: int, cells: list[str]) -> str | None:
        column = self._name(Column.ENTITY)
        raw = _clean_id(self._cell(cells, Column.ENTITY) or "")
        if not raw:
            if self.tenant_pe_id is not None:
                return self.tenant_pe_id
            self._error(line, column, DltEntityInvalid.code, "the PE ID (entity ID) is empty")
            return None
        pe_id = self._id(line, raw, column, "PE ID", validate_entity_id, DltEntityInvalid)
        if pe_id is not None and self.tenant_pe_id is not None and pe_id != self.tenant_pe_id:
            self._error(
                line,
                column,
                DltEntityUnknown.code,
                f"the row belongs to PE ID {pe_id}, but this import is for PE ID"
                f" {self.tenant_pe_id}; export the templates of your own entity",
            )
            return None
        return pe_id

    def _id(
        self,
        line: int,
        raw: str,
        column: str | None,
        what: str,
        validate: Callable[[str], str],
        error: type[BharatSendError],
    ) -> str | None:
        if not raw:
            self._error(line, column, error.code, f"the {what} is empty")
            return None
        if _EXCEL_NUMBER_RE.fullmatch(raw):
            self._error(
                line,
                column,
                error.code,
                f"the {what} {raw!r} was saved as a number and has lost digits; format the"
                " column as text in your spreadsheet (or download the portal's CSV again)"
                " and export it again",
            )
            return None
        try:
            value = validate(raw)
        except BharatSendError as e:
            self._error(line, column, e.code, f"{e.message}, got {raw!r}")
            return None
        if len(value) > _EXCEL_DIGITS and value[_EXCEL_DIGITS:].strip("0") == "":
            self._warn(
                line,
                column,
                "dlt_csv_id_rounded",
                f"the {what} {value} ends in zeros after its 15th digit, the mark of a number"
                " Excel rounded; check it against the DLT portal",
            )
        return value

    def _header_ids(self, line: int, cells: list[str]) -> tuple[str, ...] | None:
        column = self._name(Column.HEADER)
        raw = self._cell(cells, Column.HEADER) or ""
        parts = tuple(dict.fromkeys(p for p in _HEADER_SPLIT_RE.split(raw.strip()) if p))
        if not parts:
            self._error(
                line,
                column,
                DltHeaderInvalid.code,
                "the header is empty; every template is linked to its 6-character header",
            )
            return None
        ok = True
        for part in parts:
            try:
                validate_sender_id(part)
            except BharatSendError as e:
                self._error(line, column, e.code, f"header {part!r}: {e.message}")
                ok = False
        return parts if ok else None

    def _kind(self, line: int, cells: list[str]) -> tuple[Category | None, ContentType | None]:
        categories: list[tuple[int, Category]] = []
        content_types: list[tuple[int, ContentType]] = []
        unknown: list[tuple[int, str]] = []
        for index in self.kind_columns:
            raw = cells[index].strip() if index < len(cells) else ""
            if not raw:
                continue
            try:
                content_types.append((index, ContentType.parse(raw)))
                continue
            except BharatSendError:
                pass
            try:
                categories.append((index, Category.parse(raw)))
            except BharatSendError:
                unknown.append((index, raw))
        category = self._single(line, categories, "categories")
        content_type = self._single(line, content_types, "content types")
        if category is None and not categories:
            choices = ", ".join(c.value for c in Category)
            if unknown:
                index, raw = unknown[0]
                self._error(
                    line,
                    self.names[index],
                    DltTemplateInvalid.code,
                    f"unknown DLT category {raw!r}; use one of {choices} (or TXN, SI, SE, PML)",
                )
            else:
                self._error(
                    line,
                    self._name(Column.KIND),
                    DltTemplateInvalid.code,
                    f"the DLT category is empty; use one of {choices}",
                )
            return None, None
        for index, raw in unknown:
            if _key(self.names[index]) in _CONTENT_TYPE_ONLY:
                self._error(
                    line,
                    self.names[index],
                    DltTemplateInvalid.code,
                    f"unknown content type {raw!r}; use Text or Unicode",
                )
            else:
                self.ignored_kind_values.setdefault(index, raw)
        return category, content_type

    def _single(self, line: int, found: list[tuple[int, _T]], what: str) -> _T | None:
        values = {value for _, value in found}
        if len(values) > 1:
            said = " but ".join(f"{self.names[i]!r} says {v}" for i, v in found)
            self._error(
                line,
                self.names[found[-1][0]],
                _BAD_VALUE,
                f"the row holds two different {what}: {said}",
            )
            return None
        return found[0][1] if found else None

    def _template(
        self,
        line: int,
        template_id: str,
        entity_id: str,
        category: Category,
        content_type: ContentType | None,
        body: str,
        headers: tuple[str, ...],
        cells: list[str],
    ) -> None:
        name = (self._cell(cells, Column.NAME) or "").strip()
        non_gsm = first_non_gsm7(body)
        if content_type is None:
            content_type = ContentType.TEXT if non_gsm is None else ContentType.UNICODE
        elif content_type is ContentType.TEXT and non_gsm is not None:
            offset, char = non_gsm
            self._warn(
                line,
                self._name(Column.BODY),
                "dlt_encoding_mismatch",
                f"the template is registered as text but U+{ord(char):04X} at offset {offset}"
                " needs Unicode; every message would fail: register it as Unicode or fix the"
                " character",
            )
        if self.encoding == "cp1252" and content_type is ContentType.UNICODE and "?" in body:
            self._warn(
                line,
                self._name(Column.BODY),
                "dlt_csv_lossy_encoding",
                "a Unicode template read from a Windows-1252 file contains '?', which is how"
                " Excel replaces characters it cannot store; export as 'CSV UTF-8'",
            )
        try:
            template = Template(
                template_id=template_id,
                entity_id=entity_id,
                category=category,
                body=body,
                content_type=content_type,
                headers=headers,
                name=name,
            )
            found = check_template(template, self.policy)
        except BharatSendError as e:
            self._error(line, self._column_for(e.field), e.code, e.message)
            return
        for warning in found:
            self._warn(line, self._column_for(warning.field), warning.code, warning.message)
        header_column = self._name(Column.HEADER) or ""
        self.accepted.append(_Accepted(line, template, headers, header_column))

    def _column_for(self, field: str | None) -> str | None:
        role = {
            "body": Column.BODY,
            "headers": Column.HEADER,
            "header": Column.HEADER,
            "category": Column.KIND,
            "content_type": Column.KIND,
            "dlt_template_id": Column.TEMPLATE_ID,
            "entity_id": Column.ENTITY,
        }.get(field or "")
        return None if role is None else self._name(role)

    # -- headers across rows

    def _headers(self) -> tuple[Header, ...]:
        """One Header per sender ID, checked against every template linked to it.

        A numeric header carries only promotional (or ex-service-explicit)
        templates and an alphabetic one anything but promotional
        (``Header.fits``), so a header serving promotional and non-promotional
        templates fails on the rows that do not fit its kind. A header belongs
        to one entity: the same sender ID under two PE IDs is an error.
        """
        first: dict[str, _Accepted] = {}
        for accepted in self.accepted:
            template = accepted.template
            for sender_id in accepted.headers:
                owner = first.setdefault(sender_id, accepted)
                numeric = sender_id.isdigit()
                if numeric != template.category.is_promotional and (
                    numeric or template.category is Category.PROMOTIONAL
                ):
                    self._error(
                        accepted.line,
                        accepted.header_column,
                        DltHeaderCategoryMismatch.code,
                        _misfit(sender_id, template.category, owner, accepted),
                    )
                if owner.template.entity_id != template.entity_id:
                    self._error(
                        accepted.line,
                        accepted.header_column,
                        DltTemplateHeaderMismatch.code,
                        f"header {sender_id!r} belongs to PE ID {owner.template.entity_id}"
                        f" (line {owner.line}), not to {template.entity_id}",
                    )
        if self.errors:
            return ()
        return tuple(
            Header(
                sender_id,
                owner.template.entity_id,
                Category.PROMOTIONAL if sender_id.isdigit() else owner.template.category,
            )
            for sender_id, owner in first.items()
        )

    # -- reporting

    def _error(self, line: int, column: str | None, code: str, message: str) -> None:
        self.errors.append(RowError(line, column, code, message))

    def _warn(self, line: int, column: str | None, code: str, message: str) -> None:
        self.warnings.append(RowWarning(line, column, code, message))

    def _fail_now(self, error: RowError) -> NoReturn:
        raise _invalid([*self.errors, error])


def _misfit(sender_id: str, category: Category, owner: _Accepted, row: _Accepted) -> str:
    if sender_id.isdigit():
        text = (
            f"header {sender_id!r} is numeric, and numeric headers carry promotional templates"
            f" only; this template is {category.value}: link it to a 6-letter header"
        )
    else:
        text = (
            f"header {sender_id!r} is alphabetic, and promotional templates need a 6-digit"
            " numeric header"
        )
    if owner is not row and owner.template.category.is_promotional != category.is_promotional:
        text += f" (line {owner.line} uses it for {owner.template.category.value})"
    return text


def _clean_id(raw: str) -> str:
    """Strip white space and Excel's keep-as-text tricks (``="123"``, ``'123``) from an ID."""
    value = raw.strip()
    match = _EXCEL_TEXT_RE.fullmatch(value)
    if match:
        value = match.group(1).strip()
    return value.removeprefix("'").strip()


def _example_names(role: Column) -> str:
    examples = {
        Column.TEMPLATE_ID: "'Template ID', 'Content Template ID', 'CT ID'",
        Column.BODY: "'Template Content', 'Template Message', 'Content'",
        Column.HEADER: "'Header', 'Sender ID', 'Header Name'",
        Column.KIND: "'Template Type', 'Category', 'Content Type'",
        Column.ENTITY: "'Entity ID', 'PE ID'; or pass tenant_pe_id",
    }
    return examples.get(role, "")


def _sniff(text: str) -> tuple[str, bool]:
    """The delimiter, from the first non-blank line, and whether that line is Excel's ``sep=``.

    The delimiter under which most cells of that line are known column names
    wins; on a tie, the one giving more cells, then ``,`` before ``;`` before tab.
    """
    line = next((ln for ln in io.StringIO(text, newline="") if ln.strip(' \t\r\n,;"')), "")
    sep = _SEP_LINE_RE.fullmatch(line.strip())
    if sep:
        return sep.group(1), True

    def score(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([line], delimiter=delimiter), [])
        return sum(_key(c) in _ROLE_OF for c in cells), len(cells)

    return max(_DELIMITERS, key=score), False


def _invalid(errors: list[RowError]) -> DltCsvInvalid:
    ordered = sorted(errors, key=lambda e: e.line)
    first = ordered[0]
    failed = len({e.line for e in ordered})
    where = f"line {first.line}" + (f", column {first.column!r}" if first.column else "")
    return DltCsvInvalid(
        f"DLT CSV not imported: {failed} row(s) have errors ({len(ordered)} in all); the"
        f" first is on {where}: {first.message}",
        field="file",
        detail={
            "errors": [e.to_dict() for e in ordered[:MAX_REPORTED_ERRORS]],
            "error_count": len(ordered),
        },
    )
