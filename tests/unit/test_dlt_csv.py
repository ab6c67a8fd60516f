"""Importing DLT portal CSV exports: every portal's dialect in, domain values or row errors out."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bharatsend_core.domain.dlt import (
    Category,
    ContentType,
    DltPolicy,
    Header,
    Severity,
    Template,
)
from bharatsend_core.domain.encoding import first_non_gsm7
from bharatsend_core.domain.errors import (
    ERROR_CODES,
    DltCsvInvalid,
    DltEntityInvalid,
    DltViolation,
    InvalidArgument,
    ValidationError,
)
from bharatsend_core.service.dlt_csv import (
    MAX_REPORTED_ERRORS,
    DltCsvImport,
    RowError,
    RowNote,
    parse_dlt_csv,
)

PE = "1101234567890123456"
OTHER_PE = "1201987654321098765"
MULTI_HEADER = DltPolicy(max_headers_per_template=3)

# Jio-like: comma, CRLF, UTF-8 with BOM, and the portal's habit of putting the DLT
# category in "Content Type" while "Template Type" holds Text/Unicode.
JIO = (
    "PE ID,Template ID,Template Name,Template Type,Content Type,Header,Template Content,Status\r\n"
    f"{PE},1107161234567890123,login otp,Text,Transactional,ACMEBK,"
    '"{#numeric#} is your OTP for ACME login, valid for 10 minutes. -ACME",Approved\r\n'
    f"{PE},1107161234567890124,shipping,Text,Service Implicit,ACMESV,"
    '"Order {#alphanumeric#} shipped.\nTrack: {#url#}\r\nSay ""thanks"" to {#var#} -ACME",'
    "Approved\r\n"
    f"{PE},1107161234567890125,hindi otp,Unicode,Transactional,ACMEBK,"
    '"आपका OTP {#numeric#} है। -ACME",Active\r\n'
    f"{PE},1107161234567890126,old promo,Text,Promotional,512345,"
    '"Sale, sale {#var#}",Rejected\r\n'
    f"{PE},1107161234567890127,new promo,Text,Promotional,512345,"
    '"Flat {#numeric#}% off this weekend! To opt out reply STOP",Pending\r\n'
).encode("utf-8-sig")

# Airtel-like: semicolon, plain UTF-8, short category codes, several headers per cell.
AIRTEL = (
    "Entity ID;Content Template ID;Headers;Category;Message Type;Template Message;"
    "Approval Status\n"
    f'{PE};1107169000000000011;ACMEBK|ACMEOT;TXN;Text;"Dear {{#var#}}; your a/c is debited";'
    "Approved\n"
    f'{PE};1107169000000000012;512345, 512346;PML;Text;"Big; bold {{#var#}} deals. To opt'
    ' out SMS STOP";Approved\n'
    f"{PE};1107169000000000013;ACMESV;SE;Unicode;Offer {{#var#}} for you, reply STOP;Active\n"
)

# Vodafone-Idea-like: tab, different names and order, an industry "Category" column
# (neither a DLT category nor a content type), entity column last.
VI = (
    "CT ID\tHeader Name\tTemplate Category\tTemplate Content Type\tTemplate Body\t"
    "Template Status\tCategory\tPrincipal Entity ID\n"
    "1107170000000000021\tACMEBK\tService-Explicit\ttext\t"
    '"Hi {#var#},\tyour ""gold"" card is ready"\tApproved\tBanking\t' + PE + "\n"
    "1107170000000000022\tACMEBK\tService Implicit\tTEXT\tBalance {#numeric#} -ACME\t"
    "Deactivated\tBanking\t" + PE + "\n"
)


def parse(data: str | bytes, **kwargs: Any) -> DltCsvImport:
    """Parse for the tenant PE unless the test says otherwise."""
    kwargs.setdefault("tenant_pe_id", PE)
    return parse_dlt_csv(data, **kwargs)


def errors_of(data: str | bytes, **kwargs: Any) -> list[dict[str, Any]]:
    """The row errors of a file that must not import (for the tenant PE by default)."""
    kwargs.setdefault("tenant_pe_id", PE)
    with pytest.raises(DltCsvInvalid) as info:
        parse_dlt_csv(data, **kwargs)
    errors: list[dict[str, Any]] = info.value.detail["errors"]
    assert info.value.detail["error_count"] >= len(errors)
    return errors


def simple(*rows: str, header: str = "Template ID,Header,Category,Template Content") -> str:
    return "\n".join([header, *rows]) + "\n"


# ---------------------------------------------------------------- portal styles


def test_jio_style_export_reads_the_category_out_of_content_type() -> None:
    result = parse(JIO)
    assert [t.template_id for t in result.templates] == [
        "1107161234567890123",
        "1107161234567890124",
        "1107161234567890125",
    ]
    otp, ship, hindi = result.templates
    assert otp == Template(
        template_id="1107161234567890123",
        entity_id=PE,
        category=Category.TRANSACTIONAL,
        body="{#numeric#} is your OTP for ACME login, valid for 10 minutes. -ACME",
        content_type=ContentType.TEXT,
        headers={"ACMEBK"},
        name="login otp",
    )
    # Bodies are exact: the LF and the CRLF inside the quoted cell survive, "" is one quote.
    assert (
        ship.body
        == 'Order {#alphanumeric#} shipped.\nTrack: {#url#}\r\nSay "thanks" to {#var#} -ACME'
    )
    assert ship.category is Category.SERVICE_IMPLICIT
    assert hindi.content_type is ContentType.UNICODE
    assert hindi.body == "आपका OTP {#numeric#} है। -ACME"
    assert result.headers == (
        Header("ACMEBK", PE, Category.TRANSACTIONAL),
        Header("ACMESV", PE, Category.SERVICE_IMPLICIT),
    )
    assert result.entities == (PE,)
    assert result.skipped == (
        RowNote(7, "1107161234567890126", "status 'Rejected': rejected on the DLT portal"),
        RowNote(8, "1107161234567890127", "status 'Pending': not approved yet"),
    )
    assert result.rows == 5
    assert result.encoding == "utf-8"
    assert result.delimiter == ","


def test_airtel_style_semicolon_export_with_several_headers_per_cell() -> None:
    result = parse(AIRTEL, policy=MULTI_HEADER)
    assert result.delimiter == ";"
    debit, promo, offer = result.templates
    assert debit.headers == {"ACMEBK", "ACMEOT"}
    assert debit.body == "Dear {#var#}; your a/c is debited"
    assert promo.headers == {"512345", "512346"}
    assert promo.category is Category.PROMOTIONAL
    assert offer.category is Category.SERVICE_EXPLICIT
    assert offer.content_type is ContentType.UNICODE
    assert {h.sender_id: h.category for h in result.headers} == {
        "ACMEBK": Category.TRANSACTIONAL,
        "ACMEOT": Category.TRANSACTIONAL,
        "512345": Category.PROMOTIONAL,
        "512346": Category.PROMOTIONAL,
        "ACMESV": Category.SERVICE_EXPLICIT,
    }


def test_two_headers_in_one_cell_break_the_default_one_header_rule() -> None:
    errors = errors_of(AIRTEL)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        (2, "Headers", "dlt_template_header_mismatch"),
        (3, "Headers", "dlt_template_header_mismatch"),
    ]


def test_vi_style_tab_export_ignores_an_industry_category_column_with_one_warning() -> None:
    result = parse(VI)
    assert result.delimiter == "\t"
    (card,) = result.templates
    assert card.category is Category.SERVICE_EXPLICIT
    assert card.body == 'Hi {#var#},\tyour "gold" card is ready'
    assert result.skipped == (
        RowNote(3, "1107170000000000022", "status 'Deactivated': deactivated on the DLT portal"),
    )
    ignored = [w for w in result.warnings if w.code == "dlt_csv_column_ignored"]
    assert [(w.line, w.column) for w in ignored] == [(1, "Category")]
    assert "'Banking'" in ignored[0].message


# ---------------------------------------------------------------- encodings and dialects


def test_cp1252_file_from_excel_is_decoded_and_noted() -> None:
    text = simple("1107161234567890123,ACMEBK,TXN,Café order {#var#} is ready – thanks")
    result = parse(text.encode("cp1252"))
    assert result.encoding == "cp1252"
    assert result.templates[0].body == "Café order {#var#} is ready – thanks"
    assert [w.code for w in result.warnings if w.line == 1] == ["dlt_csv_encoding"]


def test_cp1252_unicode_template_with_question_marks_is_flagged_as_lossy() -> None:
    text = simple(
        "1107161234567890123,ACMEBK,TXN,Unicode,?????? OTP {#numeric#} ??? é",
        header="Template ID,Header,Category,Content Type,Template Content",
    )
    result = parse(text.encode("cp1252"))
    assert ("dlt_csv_lossy_encoding", 2) in [(w.code, w.line) for w in result.warnings]


def test_bytes_neither_utf8_nor_cp1252_are_an_error_on_their_line() -> None:
    data = simple("1107161234567890123,ACMEBK,TXN,Order {#var#} ready now").encode() + b"\x81\n"
    errors = errors_of(data)
    assert [(e["line"], e["code"]) for e in errors] == [(3, "dlt_csv_bad_value")]
    assert "0x81" in errors[0]["message"]


def test_bom_in_text_and_utf16_excel_unicode_text_are_accepted() -> None:
    text = simple(
        "1107161234567890123,ACMEBK,TXN,आपका OTP {#numeric#} है",
        header="\ufeffTemplate ID,Header,Category,Template Content",
    )
    assert parse(text).templates[0].content_type is ContentType.UNICODE
    tabbed = text.replace(",", "\t")
    result = parse(tabbed.encode("utf-16"))
    assert result.encoding == "utf-16"
    assert result.templates[0].body == "आपका OTP {#numeric#} है"


def test_excel_sep_line_sets_the_delimiter() -> None:
    text = "sep=;\nTemplate ID;Header;Category;Template Content\n"
    text += "1107161234567890123;ACMEBK;TXN;Your code, {#numeric#}, expires soon\n"
    result = parse(text)
    assert result.delimiter == ";"
    assert result.templates[0].body == "Your code, {#numeric#}, expires soon"


@pytest.mark.parametrize(
    "names",
    [
        "TEMPLATE_ID,SENDER_ID,TEMPLATE_TYPE,CONTENT",
        "template id,sender id,template type,template body",
        "  Template-Id ,Header Name,Template Category, Template Message",
        "Content Template ID,Headers,Content Type,Message",
        "CT ID,Header,Type,Template Content",
    ],
)
def test_column_names_ignore_case_spaces_underscores_and_punctuation(names: str) -> None:
    result = parse(
        simple("1107161234567890123,ACMEBK,TXN,Your OTP is {#numeric#} ok", header=names)
    )
    assert result.templates[0].template_id == "1107161234567890123"
    assert result.templates[0].headers == {"ACMEBK"}


@pytest.mark.parametrize("cell", ['"ACMEBK,ACMEOT"', "ACMEBK;ACMEOT", "ACMEBK | ACMEOT"])
def test_a_header_cell_may_list_several_headers(cell: str) -> None:
    result = parse(
        simple(f"1107161234567890123,{cell},TXN,Your OTP is {{#numeric#}} ok"), policy=MULTI_HEADER
    )
    assert result.templates[0].headers == {"ACMEBK", "ACMEOT"}


def test_empty_lines_are_ignored_and_do_not_shift_line_numbers() -> None:
    text = "\nTemplate ID,Header,Category,Template Content\n\n,,,\n"
    text += "1107161234567890123,ACMEBK,TXN,no placeholder here at all\n"
    errors = errors_of(text)
    assert [(e["line"], e["code"]) for e in errors] == [(5, "dlt_template_no_variable")]


def test_excel_keep_as_text_tricks_are_undone() -> None:
    text = simple(
        '="1107161234567890123",ACMEBK,TXN,Your OTP is {#numeric#} ok',
        "'1107161234567890124,ACMEBK,TXN,Your PIN is {#numeric#} ok",
        " 1107161234567890125 ,ACMEBK,TXN,Your key is {#numeric#} ok",
    )
    ids = [t.template_id for t in parse(text).templates]
    assert ids == ["1107161234567890123", "1107161234567890124", "1107161234567890125"]


# ---------------------------------------------------------------- statuses


@pytest.mark.parametrize("status", ["Approved", "ACTIVE", "", "approved "])
def test_approved_active_or_empty_status_imports(status: str) -> None:
    header = "Template ID,Header,Category,Template Content,Template Status"
    text = simple(
        f"1107161234567890123,ACMEBK,TXN,Your OTP is {{#numeric#}} ok,{status}", header=header
    )
    assert len(parse(text).templates) == 1


@pytest.mark.parametrize("status", ["Rejected", "Inactive", "Deactivated", "Pending", "PENDING"])
def test_rejected_inactive_or_pending_rows_are_skipped_with_a_note(status: str) -> None:
    # A skipped row is not validated: rejected templates are often malformed.
    text = simple(
        f"1107161234567890123,ACMEBK,TXN,no placeholder {{#Var#}},{status}",
        header="Template ID,Header,Category,Template Content,Status",
    )
    result = parse(text)
    assert result.templates == ()
    assert [(n.line, n.template_id) for n in result.skipped] == [(2, "1107161234567890123")]
    assert status.strip() in result.skipped[0].reason
    assert result.rows == 1


def test_an_unknown_status_is_an_error_not_a_guess() -> None:
    text = simple(
        "1107161234567890123,ACMEBK,TXN,Your OTP is {#numeric#} ok,Maybe",
        header="Template ID,Header,Category,Template Content,Status",
    )
    errors = errors_of(text)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        (2, "Status", "dlt_csv_bad_value")
    ]


# ---------------------------------------------------------------- every error, exact line

GOOD = "1107161234567890100,ACMEBK,TXN,Your OTP is {#numeric#} for login"
# Line 2 is GOOD; lines 3-5 hold one row whose body spans three lines; the row under
# test is line 6.
MULTILINE = '1107161234567890101,ACMEBK,TXN,"Dear {#var#},\nyour OTP is {#numeric#}\nACME"'


@pytest.mark.parametrize(
    ("row", "column", "code", "fragment"),
    [
        ("11O7,ACMEBK,TXN,Your OTP is {#numeric#} ok", "Template ID", "dlt_template_invalid",
         "1 to 30 digits"),
        ("1.10716E+18,ACMEBK,TXN,Your OTP is {#numeric#} ok", "Template ID",
         "dlt_template_invalid", "as text"),
        ("1107161234567890123.0,ACMEBK,TXN,Your OTP is {#numeric#} ok", "Template ID",
         "dlt_template_invalid", "as text"),
        (",ACMEBK,TXN,Your OTP is {#numeric#} ok", "Template ID", "dlt_template_invalid",
         "empty"),
        ("1107161234567890123,ACMEBK,Banking,Your OTP is {#numeric#} ok", "Category",
         "dlt_template_invalid", "'Banking'"),
        ("1107161234567890123,ACMEBK,,Your OTP is {#numeric#} ok", "Category",
         "dlt_template_invalid", "empty"),
        ("1107161234567890123,ACMEBK,TXN,", "Template Content", "dlt_template_invalid", "empty"),
        ("1107161234567890123,VM-ACMEBK-S,TXN,Your OTP is {#numeric#} ok", "Header",
         "dlt_header_invalid", "'ACMEBK'"),
        ("1107161234567890123,,TXN,Your OTP is {#numeric#} ok", "Header", "dlt_header_invalid",
         "empty"),
        ("1107161234567890123,ACMEBK,TXN,Your OTP is {#Numeric#} ok", "Template Content",
         "dlt_template_malformed", "{#Numeric#}"),
        ("1107161234567890123,ACMEBK,TXN,Your OTP is ready now", "Template Content",
         "dlt_template_no_variable", "placeholder"),
        ('1107161234567890123,"ACMEBK,ACMEOT",TXN,Your OTP is {#numeric#} ok', "Header",
         "dlt_template_header_mismatch", "at most 1"),
        ("1107161234567890123,512345,TXN,Your OTP is {#numeric#} ok", "Header",
         "dlt_header_category_mismatch", "numeric"),
        ("1107161234567890123,ACMEBK,PML,Sale {#var#}! To opt out reply STOP", "Header",
         "dlt_header_category_mismatch", "alphabetic"),
        ("1107161234567890100,ACMEBK,TXN,Your OTP is {#numeric#} ok", "Template ID",
         "dlt_csv_duplicate", "line 2"),
        ("1107161234567890123,ACMEBK,TXN,Your OTP is {#numeric#} ok,extra", None,
         "dlt_csv_bad_value", "'extra'"),
        ("1107161234567890123,ACMEBK", None, "dlt_csv_bad_value", "2 cells"),
    ],
)  # fmt: skip
def test_each_row_error_names_its_line_column_and_code(
    row: str, column: str | None, code: str, fragment: str
) -> None:
    errors = errors_of(simple(GOOD, MULTILINE, row))
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [(6, column, code)]
    assert fragment in errors[0]["message"]


ENTITY_HEADER = "Template ID,Header,Category,Template Content,PE ID"


@pytest.mark.parametrize(
    ("pe_cell", "tenant", "code"),
    [
        ("12-34", None, "dlt_entity_invalid"),
        ("1.10123E+18", None, "dlt_entity_invalid"),
        ("", None, "dlt_entity_invalid"),
        (OTHER_PE, PE, "dlt_entity_unknown"),
    ],
)
def test_entity_errors_name_their_line_column_and_code(
    pe_cell: str, tenant: str | None, code: str
) -> None:
    row = f"1107161234567890123,ACMEBK,TXN,Your OTP is {{#numeric#}} ok,{pe_cell}"
    text = simple(f"{GOOD},{PE}", f"{MULTILINE},{PE}", row, header=ENTITY_HEADER)
    errors = errors_of(text, tenant_pe_id=tenant)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [(6, "PE ID", code)]


@pytest.mark.parametrize(
    ("kind_column", "value", "code"),
    [
        ("Content Type", "Promotional", "dlt_csv_bad_value"),
        ("Template Content Type", "Binary", "dlt_template_invalid"),
    ],
)
def test_kind_errors_name_their_line_column_and_code(
    kind_column: str, value: str, code: str
) -> None:
    header = f"Template ID,Header,Category,{kind_column},Template Content"
    row = f"1107161234567890123,ACMEBK,TXN,{value},Your OTP is {{#numeric#}} ok"
    prior = [r.replace(",TXN,", ",TXN,Text,") for r in (GOOD, MULTILINE)]
    errors = errors_of(simple(*prior, row, header=header))
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [(6, kind_column, code)]


def test_missing_required_columns_are_one_error_on_line_1() -> None:
    data = "Template ID,Body,Status\n1107161234567890123,Hello {#var#},Approved\n"
    errors = errors_of(data, tenant_pe_id=None)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        (1, None, "dlt_csv_missing_column")
    ]
    message = errors[0]["message"]
    assert "header" in message
    assert "category" in message
    assert "entity" in message
    assert "'Template ID', 'Body', 'Status'" in message


def test_the_entity_column_may_be_absent_when_the_tenant_pe_id_is_given() -> None:
    text = simple(GOOD)
    assert [e["code"] for e in errors_of(text, tenant_pe_id=None)] == ["dlt_csv_missing_column"]
    result = parse(text)
    assert result.templates[0].entity_id == PE
    assert result.headers == (Header("ACMEBK", PE, Category.TRANSACTIONAL),)
    assert result.entities == (PE,)


def test_two_columns_for_the_same_role_are_an_error() -> None:
    text = simple(GOOD + ",ACMEBK", header="Template ID,Header,Category,Template Content,Sender ID")
    errors = errors_of(text)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        (1, "Sender ID", "dlt_csv_bad_value")
    ]


def test_an_empty_file_is_a_missing_column_error() -> None:
    assert [(e["line"], e["code"]) for e in errors_of(b"")] == [(1, "dlt_csv_missing_column")]


def test_more_rows_than_max_rows_is_an_error_on_the_first_extra_row() -> None:
    rows = [f"11071612345678902{i:02},ACMEBK,TXN,Your OTP is {{#numeric#}} ok" for i in range(3)]
    assert parse(simple(*rows), max_rows=3).rows == 3
    errors = errors_of(simple(MULTILINE, *rows), max_rows=3)
    # MULTILINE fills lines 2-4, so the fourth data row starts on line 7.
    assert [(e["line"], e["code"]) for e in errors] == [(7, "dlt_csv_too_many_rows")]


def test_an_unclosed_quote_is_reported_on_the_line_its_row_starts() -> None:
    text = simple(GOOD, MULTILINE, '1107161234567890123,ACMEBK,TXN,"Your OTP {#numeric#}', GOOD)
    errors = errors_of(text)
    assert [(e["line"], e["code"]) for e in errors] == [(6, "dlt_csv_bad_value")]
    assert "double quotes" in errors[0]["message"]


def test_text_after_a_closing_quote_is_a_csv_error() -> None:
    text = simple(GOOD, '1107161234567890123,ACMEBK,TXN,"Your OTP" {#numeric#}')
    errors = errors_of(text)
    assert [(e["line"], e["code"]) for e in errors] == [(3, "dlt_csv_bad_value")]


def test_a_header_shared_by_two_entities_is_an_error_on_the_later_row() -> None:
    text = simple(
        f"1107161234567890123,ACMEBK,TXN,Your OTP is {{#numeric#}} ok,{PE}",
        f"1107161234567890124,ACMEBK,TXN,Your PIN is {{#numeric#}} ok,{OTHER_PE}",
        header="Template ID,Header,Category,Template Content,Entity ID",
    )
    errors = errors_of(text, tenant_pe_id=None)
    assert [(e["line"], e["column"], e["code"]) for e in errors] == [
        (3, "Header", "dlt_template_header_mismatch")
    ]
    assert "line 2" in errors[0]["message"]


def test_a_header_serving_promotional_and_transactional_templates_fails_the_misfit_rows() -> None:
    text = simple(
        "1107161234567890123,512345,PML,Sale {#var#}! To opt out reply STOP",
        "1107161234567890124,512345,TXN,Your PIN is {#numeric#} ok",
        "1107161234567890125,512345,SE,Offer {#var#} for you; reply STOP",
    )
    errors = errors_of(text)
    assert [(e["line"], e["code"]) for e in errors] == [(3, "dlt_header_category_mismatch")]
    assert "line 2 uses it for promotional" in errors[0]["message"]


# ---------------------------------------------------------------- all or nothing


def test_one_bad_row_means_nothing_is_imported() -> None:
    text = simple(GOOD, MULTILINE, "1107161234567890123,ACMEBK,TXN,no placeholder at all", GOOD)
    with pytest.raises(DltCsvInvalid) as info:
        parse_dlt_csv(text, tenant_pe_id=PE)
    error = info.value
    assert error.code == "dlt_csv_invalid"
    assert error.http_status == 422
    assert error.detail["error_count"] == 2
    assert [e["line"] for e in error.detail["errors"]] == [6, 7]
    assert error.message.startswith("DLT CSV not imported: 2 row(s) have errors (2 in all)")
    assert "line 6, column 'Template Content'" in error.message
    assert error.to_dict()["detail"]["errors"][1]["code"] == "dlt_csv_duplicate"


def test_errors_are_all_counted_but_only_the_first_hundred_listed() -> None:
    rows = [f"1107161234567{i:06},ACMEBK,TXN,no placeholder at all" for i in range(150)]
    with pytest.raises(DltCsvInvalid) as info:
        parse_dlt_csv(simple(*rows), tenant_pe_id=PE)
    assert info.value.detail["error_count"] == 150
    listed = info.value.detail["errors"]
    assert len(listed) == MAX_REPORTED_ERRORS
    assert [e["line"] for e in listed] == list(range(2, 102))


def test_a_row_with_several_faults_reports_each() -> None:
    errors = errors_of(simple("11O7,VM-ACMEBK,Banking,x"))
    assert {(e["column"], e["code"]) for e in errors} == {
        ("Template ID", "dlt_template_invalid"),
        ("Header", "dlt_header_invalid"),
        ("Category", "dlt_template_invalid"),
    }
    assert {e["line"] for e in errors} == {2}


def test_the_csv_error_is_a_validation_error_but_not_a_dlt_violation() -> None:
    assert ERROR_CODES["dlt_csv_invalid"] is DltCsvInvalid
    assert issubclass(DltCsvInvalid, ValidationError)
    assert not issubclass(DltCsvInvalid, DltViolation)
    assert RowError(2, "Header", "dlt_header_invalid", "m").to_dict() == {
        "line": 2,
        "column": "Header",
        "code": "dlt_header_invalid",
        "message": "m",
    }


def test_bad_arguments_are_refused_before_reading() -> None:
    with pytest.raises(InvalidArgument):
        parse_dlt_csv(simple(GOOD), tenant_pe_id=PE, max_rows=0)
    with pytest.raises(DltEntityInvalid):
        parse_dlt_csv(simple(GOOD), tenant_pe_id="PE-1")
    with pytest.raises(InvalidArgument):
        parse_dlt_csv(bytearray(b"x"), tenant_pe_id=PE)  # type: ignore[arg-type]


# ---------------------------------------------------------------- warnings and inference


def test_check_template_warnings_carry_their_line_and_column() -> None:
    text = simple(
        GOOD,
        MULTILINE,
        "1107161234567890123,ACMEBK,TXN,Your  OTP is {#numeric#} ok",
        "1107161234567890124,512345,PML,Sale {#var#} this weekend only",
    )
    result = parse(text)
    found = [(w.line, w.column, w.code) for w in result.warnings]
    assert found == [
        (6, "Template Content", "dlt_template_double_space"),
        (7, "Template Content", "dlt_opt_out_missing"),
    ]


def test_policy_severities_apply() -> None:
    lenient = DltPolicy(no_variable=Severity.WARN)
    text = simple("1107161234567890123,ACMEBK,TXN,no placeholder at all")
    result = parse(text, policy=lenient)
    assert [w.code for w in result.warnings] == ["dlt_template_no_variable"]


def test_without_a_content_type_column_it_is_inferred_from_the_body() -> None:
    text = simple(GOOD, "1107161234567890124,ACMEBK,TXN,Your OTP’s {#numeric#} ok")
    plain, curly = parse(text).templates
    assert plain.content_type is ContentType.TEXT
    assert curly.content_type is ContentType.UNICODE


def test_a_text_template_that_is_not_gsm7_warns_which_character() -> None:
    text = simple(
        "1107161234567890124,ACMEBK,TXN,Text,Your OTP’s {#numeric#} ok",
        header="Template ID,Header,Category,Content Type,Template Content",
    )
    result = parse(text)
    assert result.templates[0].content_type is ContentType.TEXT
    (warning,) = result.warnings
    assert (warning.line, warning.code) == (2, "dlt_encoding_mismatch")
    assert "U+2019" in warning.message


def test_an_id_excel_rounded_to_15_digits_earns_a_warning() -> None:
    result = parse(simple("1107161234567890000,ACMEBK,TXN,Your OTP is {#numeric#} ok"))
    assert [(w.line, w.code) for w in result.warnings] == [(2, "dlt_csv_id_rounded")]


# ---------------------------------------------------------------- round trip property

ID_COLUMNS = ["Template ID", "TEMPLATE_ID", "Content Template ID", "CT ID", "Template Id"]
BODY_COLUMNS = ["Template Content", "Template Message", "CONTENT", "Message", "Template Body"]
HEADER_COLUMNS = ["Header", "Sender ID", "Header Name", "Headers"]
CATEGORY_COLUMNS = ["Template Type", "Category", "Content Type", "Template Category"]
TYPE_COLUMNS = ["Content Type", "Message Type", "Type", "Template Content Type"]
STATUS_COLUMNS = ["Status", "Template Status", "Approval Status"]
ENTITY_COLUMNS = ["Entity ID", "PE ID", "Principal Entity ID", "PEID"]
CATEGORY_SPELLINGS = {
    Category.TRANSACTIONAL: ["Transactional", "TXN", "transactional"],
    Category.SERVICE_IMPLICIT: ["Service Implicit", "SI", "service_implicit"],
    Category.SERVICE_EXPLICIT: ["Service-Explicit", "SE", "Service Explicit"],
    Category.PROMOTIONAL: ["Promotional", "PML"],
    Category.GOVERNMENT: ["Government", "Govt"],
}
ALPHA_HEADERS = ["ACMEBK", "ACMEOT", "AcmeSv"]
NUMERIC_HEADERS = ["512345", "012345"]
PLACEHOLDERS = ["{#var#}", "{#numeric#}", "{#alphanumeric#}", "{#url#}", "{#cbn#}"]
ROUND_TRIP_POLICY = DltPolicy(max_headers_per_template=3, no_variable=Severity.WARN)

# Any text but '#' and '}' (which could form near-miss placeholders) and surrogates, with the
# characters that stress CSV quoting drawn often.
literal = st.text(
    st.one_of(
        st.sampled_from(list(",;\t\"'\r\n {’“” |")),
        st.characters(exclude_categories=["Cs"], exclude_characters="#}"),
    ),
    max_size=20,
)
body = (
    st.lists(st.one_of(literal, st.sampled_from(PLACEHOLDERS)), min_size=1, max_size=5)
    .map("".join)
    .filter(bool)
)


@st.composite
def template(draw: st.DrawFn, template_id: str, entity_id: str) -> Template:
    category = draw(st.sampled_from(list(Category)))
    pool = {
        Category.PROMOTIONAL: NUMERIC_HEADERS,
        Category.SERVICE_EXPLICIT: draw(st.sampled_from([NUMERIC_HEADERS, ALPHA_HEADERS])),
    }.get(category, ALPHA_HEADERS)
    headers = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    text = draw(body)
    inferred = ContentType.TEXT if first_non_gsm7(text) is None else ContentType.UNICODE
    return Template(
        template_id=template_id,
        entity_id=entity_id,
        category=category,
        body=text,
        content_type=draw(st.sampled_from([inferred, *ContentType])),
        headers=headers,
    )


@st.composite
def export(draw: st.DrawFn) -> tuple[list[Template], str | bytes, dict[str, Any]]:
    entity_id = draw(st.sampled_from([PE, OTHER_PE]))
    ids = draw(st.lists(st.from_regex(r"[0-9]{1,30}", fullmatch=True), max_size=8, unique=True))
    templates = [draw(template(i, entity_id)) for i in ids]
    # Numeric headers serve only promotional or service-explicit templates and alphabetic
    # ones never promotional (template() draws from those pools), so every file is valid.
    with_type = draw(st.booleans())
    columns = {
        "id": draw(st.sampled_from(ID_COLUMNS)),
        "body": draw(st.sampled_from(BODY_COLUMNS)),
        "header": draw(st.sampled_from(HEADER_COLUMNS)),
        "category": draw(st.sampled_from(CATEGORY_COLUMNS)),
    }
    if with_type:
        columns["type"] = draw(st.sampled_from(TYPE_COLUMNS))
    if draw(st.booleans()):
        columns["status"] = draw(st.sampled_from(STATUS_COLUMNS))
    kwargs: dict[str, Any] = {"policy": ROUND_TRIP_POLICY}
    if draw(st.booleans()):
        columns["entity"] = draw(st.sampled_from(ENTITY_COLUMNS))
    else:
        kwargs["tenant_pe_id"] = entity_id
    order = draw(st.permutations(list(columns)))
    separator = draw(st.sampled_from([",", ";", "|", " | "]))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow([columns[k] for k in order])
    for t in templates:
        cells = {
            "id": t.template_id,
            "body": t.body,
            "header": separator.join(sorted(t.headers)),
            "category": draw(st.sampled_from(CATEGORY_SPELLINGS[t.category])),
            "type": draw(st.sampled_from([t.content_type.value, t.content_type.value.title()])),
            "status": draw(st.sampled_from(["Approved", "Active", ""])),
            "entity": t.entity_id,
        }
        writer.writerow([cells[k] for k in order])
    text = out.getvalue()
    if not with_type:
        templates = [
            Template(
                template_id=t.template_id,
                entity_id=t.entity_id,
                category=t.category,
                body=t.body,
                content_type=ContentType.TEXT if first_non_gsm7(t.body) is None else "unicode",
                headers=t.headers,
            )
            for t in templates
        ]
    encoded = draw(st.sampled_from(["str", "utf-8", "utf-8-sig", "utf-16"]))
    data: str | bytes = text if encoded == "str" else text.encode(encoded)
    return templates, data, kwargs


@given(export())
def test_any_valid_export_round_trips_to_the_same_templates(
    case: tuple[list[Template], str | bytes, dict[str, Any]],
) -> None:
    templates, data, kwargs = case
    result = parse_dlt_csv(data, **kwargs)
    assert list(result.templates) == templates
    assert result.rows == len(templates)
    assert result.skipped == ()
    assert {h.sender_id for h in result.headers} == {s for t in templates for s in t.headers}
