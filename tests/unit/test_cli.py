"""Behaviour of the ``bharatsend`` command line: tables for people, JSON for machines."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bharatsend_core import __version__, cli
from bharatsend_core.cli import main

OTP_TEMPLATE = "Your OTP is {#numeric#}. Do not share it with anyone. - ACME"
OTP_TEXT = "Your OTP is 482913. Do not share it with anyone. - ACME"
HINDI = "आपका ओटीपी 482913 है"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Call ``main`` and return its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Call ``main`` with ``--json`` and parse the one JSON object it printed on stdout."""
    code, out, err = run(capsys, *argv, "--json")
    assert err == ""
    return code, json.loads(out)


def run_json_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Call ``main`` with ``--json`` expecting an error envelope on stderr and nothing on stdout."""
    code, out, err = run(capsys, *argv, "--json")
    assert out == ""
    return code, json.loads(err)["error"]


def feed_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Make standard input a UTF-8 byte stream holding ``text``, as a pipe would."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode()), "utf-8"))


# ----------------------------------------------------------------------------- module


def test_only_main_is_exported() -> None:
    assert cli.__all__ == ["main"]


def test_importing_the_cli_prints_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import bharatsend_core.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (result.stdout, result.stderr) == ("", "")


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "segment" in out
    assert "template" in out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["template"],
        ["segment", "hi", "--reference-bits", "7"],
        ["segment", "hi", "--max-segments", "many"],
        ["phone"],
        ["template", "match", "only-a-body"],
    ],
)
def test_usage_errors_keep_argparse_exit_code_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "usage: bharatsend" in err


# ----------------------------------------------------------------------------- version


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "version") == (0, f"{__version__}\n", "")


def test_version_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "version") == (0, {"name": "bharatsend-core", "version": __version__})


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out == f"bharatsend {__version__}\n"


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bharatsend_core.cli", "version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_installed_console_script_runs() -> None:
    script = shutil.which("bharatsend")
    if script is None:
        pytest.skip("the 'bharatsend' console script is not on PATH (package not installed?)")
    result = subprocess.run(
        [script, "version", "--json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["version"] == __version__


# ----------------------------------------------------------------------------- segment


def test_segment_table_for_a_single_gsm7_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "segment", "Your OTP is 482913")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "encoding        gsm7",
        "data_coding     0",
        "units           18 septets",
        "segments        1",
        "units per part  18 (limit 160)",
        "reference bits  8",
    ]


def test_segment_json_for_a_concatenated_gsm7_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "segment", "a" * 200)
    assert code == 0
    assert data == {
        "encoding": "gsm7",
        "data_coding": 0,
        "units": 200,
        "segments": 2,
        "part_units": [153, 47],
        "units_per_part_limit": 153,
        "reference_bits": 8,
        "max_segments": 10,
    }


def test_segment_16_bit_reference_leaves_one_unit_less_per_part(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, data = run_json(capsys, "segment", "a" * 200, "--reference-bits", "16")
    assert data["part_units"] == [152, 48]
    assert data["reference_bits"] == 16


def test_segment_counts_extension_characters_twice(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = run_json(capsys, "segment", "Pay €5")
    assert (data["encoding"], data["units"]) == ("gsm7", 7)


def test_segment_ucs2_for_hindi(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "segment", HINDI)
    assert code == 0
    assert (data["encoding"], data["data_coding"]) == ("ucs2", 8)
    assert data["units"] == len(HINDI)
    assert data["units_per_part_limit"] == 70


def test_segment_does_not_echo_the_text_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "Secret OTP 482913 for Priya"
    for argv in (["segment", secret], ["segment", secret, "--json"]):
        code, out, err = run(capsys, *argv)
        assert code == 0
        assert "482913" not in out + err
        assert "Priya" not in out + err
    _, data = run_json(capsys, "segment", secret)
    assert "parts" not in data


def test_segment_show_parts_prints_each_part(capsys: pytest.CaptureFixture[str]) -> None:
    text = "x" * 153 + "tail\nend"
    code, out, _ = run(capsys, "segment", text, "--show-parts")
    assert code == 0
    lines = out.splitlines()
    assert lines[-3].split() == ["part", "units", "text"]
    assert lines[-2] == f'1     153    "{"x" * 153}"'
    assert lines[-1] == '2     8      "tail\\nend"'


def test_segment_show_parts_json(capsys: pytest.CaptureFixture[str]) -> None:
    text = "y" * 160 + "z"
    _, data = run_json(capsys, "segment", text, "--show-parts")
    assert data["parts"] == ["y" * 153, "y" * 7 + "z"]
    assert "".join(data["parts"]) == text


def test_segment_explains_which_character_forced_ucs2(capsys: pytest.CaptureFixture[str]) -> None:
    text = "Your order didn’t ship"
    code, out, _ = run(capsys, "segment", text, "--explain-ucs2")
    assert code == 0
    assert "U+2019 RIGHT SINGLE QUOTATION MARK at offset 15" in out
    assert "didn" not in out  # the explanation names the character, not the text
    _, data = run_json(capsys, "segment", text, "--explain-ucs2")
    assert data["ucs2_reason"] == {
        "offset": 15,
        "codepoint": "U+2019",
        "name": "RIGHT SINGLE QUOTATION MARK",
    }


def test_segment_explain_ucs2_on_gsm7_text_says_none(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = run_json(capsys, "segment", "plain text", "--explain-ucs2")
    assert data["ucs2_reason"] is None
    code, out, _ = run(capsys, "segment", "plain text", "--explain-ucs2")
    assert code == 0
    assert "not UCS-2" in out


def test_segment_explain_ucs2_is_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = run_json(capsys, "segment", HINDI)
    assert "ucs2_reason" not in data


def test_segment_reads_stdin_and_drops_one_final_newline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_stdin(monkeypatch, "hello\n")
    code, data = run_json(capsys, "segment", "-")
    assert code == 0
    assert data["units"] == 5


def test_segment_reads_utf8_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_stdin(monkeypatch, HINDI + "\n")
    _, data = run_json(capsys, "segment", "-", "--show-parts")
    assert data["encoding"] == "ucs2"
    assert data["parts"] == [HINDI]


def test_segment_keeps_inner_newlines_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_stdin(monkeypatch, "line one\nline two\n\n")
    _, data = run_json(capsys, "segment", "-", "--show-parts")
    assert data["parts"] == ["line one\nline two\n"]


def test_segment_reads_a_utf8_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "message.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "Hello €\r\n".encode())  # BOM and CRLF from an editor
    code, data = run_json(capsys, "segment", "--file", str(path))
    assert code == 0
    assert (data["encoding"], data["units"]) == ("gsm7", 8)


def test_segment_refuses_a_file_that_is_not_utf8(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))
    code, error = run_json_error(capsys, "segment", "--file", str(path))
    assert code == 2
    assert error["code"] == "invalid_argument"
    assert error["detail"] == {"offset": 3}


def test_segment_missing_file_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "segment", "--file", str(tmp_path / "nope.txt"))
    assert (code, out) == (2, "")
    assert err.startswith("error: invalid_argument: cannot read ")


@pytest.mark.parametrize("argv", [["segment"], ["segment", "hi", "--file", "x.txt"]])
def test_segment_needs_exactly_one_text_source(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("error: invalid_argument: give the text")


def test_segment_empty_text_is_empty_content(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "segment", "")
    assert (code, out) == (2, "")
    assert err.splitlines()[0] == (
        "error: empty_content: the message text is empty; send at least one character"
    )
    code, error = run_json_error(capsys, "segment", "")
    assert code == 2
    assert error == {
        "code": "empty_content",
        "message": "the message text is empty; send at least one character",
        "field": "content",
    }


def test_segment_too_many_parts_is_content_too_long(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json_error(capsys, "segment", "a" * 161, "--max-segments", "1")
    assert code == 2
    assert error["code"] == "content_too_long"
    assert error["detail"]["segments"] == 2


def test_segment_max_segments_out_of_range_is_invalid_argument(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, error = run_json_error(capsys, "segment", "hi", "--max-segments", "0")
    assert (code, error["code"], error["field"]) == (2, "invalid_argument", "max_segments")


def test_segment_lone_surrogate_is_invalid_content(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "segment", "broken \ud83d emoji")
    assert (code, out) == (2, "")
    assert err.startswith("error: invalid_content: ")
    assert "  offset: 7" in err.splitlines()


# ----------------------------------------------------------------------------- phone


def test_phone_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "phone", "098765 43210")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "e164             +919876543210"
    assert lines[2] == "region           IN"
    assert lines[3] == "number type      mobile"
    assert lines[4].startswith("operator (hint)  ")
    assert "never route or bill on it" in lines[4]


def test_phone_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "phone", "+91 98765-43210")
    assert code == 0
    assert data["e164"] == "+919876543210"
    assert data["region"] == "IN"
    assert data["country_code"] == 91
    assert data["number_type"] == "mobile"
    assert "national" in data
    assert "operator_hint" in data
    assert "operator" not in data  # the key itself says it is only a hint


def test_phone_invalid_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "phone", "12345")
    assert (code, out) == (2, "")
    assert err.startswith("error: invalid_phone_number: ")
    assert "  field: phone_number" in err.splitlines()
    code, error = run_json_error(capsys, "phone", "call me")
    assert (code, error["code"]) == (2, "invalid_phone_number")
    assert error["detail"] == {"reason": "letters"}


def test_phone_foreign_number_needs_allow(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json_error(capsys, "phone", "+1 415 555 2671")
    assert (code, error["code"]) == (2, "unsupported_destination")
    code, data = run_json(capsys, "phone", "+1 415 555 2671", "--allow", "US")
    assert (code, data["e164"], data["region"]) == (0, "+14155552671", "US")


def test_phone_allow_takes_several_regions_in_any_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for number, region in (("+14155552671", "US"), ("9876543210", "IN")):
        code, data = run_json(capsys, "phone", number, "--allow", "us", "in")
        assert (code, data["region"]) == (0, region)


def test_phone_region_reads_national_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "phone", "(415) 555-2671", "--region", "us", "--allow", "US")
    assert (code, data["e164"]) == (0, "+14155552671")


def test_phone_unknown_region_is_invalid_argument(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json_error(capsys, "phone", "9876543210", "--region", "XX")
    assert (code, error["code"], error["field"]) == (2, "invalid_argument", "default_region")


# ----------------------------------------------------------------------------- template check


def test_template_check_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "template", "check", OTP_TEMPLATE)
    assert (code, err) == (0, "")
    assert "category            transactional" in out
    assert "placeholders        1" in out
    assert "1  {#numeric#}  12      1    30" in out
    assert "warning" not in out.replace("warnings", "")


def test_template_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    body = "Dear {#var#}, order {#alphanumeric#} is on its way. Track: {#url#}"
    code, data = run_json(capsys, "template", "check", body)
    assert code == 0
    assert data["category"] == "transactional"
    assert [(p["kind"], p["min_length"], p["max_length"]) for p in data["placeholders"]] == [
        ("var", 0, 30),
        ("alphanumeric", 1, 40),
        ("url", 1, 30),
    ]
    assert [p["index"] for p in data["placeholders"]] == [1, 2, 3]
    assert data["placeholders"][0]["offset"] == 5
    assert data["warnings"] == []


def test_template_check_reports_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    body = "Hi {#var#},  your code <b>{#numeric#}</b>"
    code, data = run_json(capsys, "template", "check", body)
    assert code == 0
    assert {w["code"] for w in data["warnings"]} == {
        "dlt_template_double_space",
        "dlt_template_forbidden_character",
    }
    _, out, _ = run(capsys, "template", "check", body)
    assert "warning: dlt_template_double_space: " in out


def test_template_check_promotional_without_opt_out_warns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    body = "Big sale this weekend at ACME stores, everything half price"
    code, data = run_json(capsys, "template", "check", body, "--category", "PROMO")
    assert (code, data["category"]) == (0, "promotional")
    assert [w["code"] for w in data["warnings"]] == ["dlt_opt_out_missing"]


def test_template_check_malformed_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    body = "Your OTP is {#var1#}, valid for 10 minutes"
    code, out, err = run(capsys, "template", "check", body)
    assert (code, out) == (2, "")
    assert err.startswith("error: dlt_template_malformed: '{#var1#}' at offset 12 ")
    code, error = run_json_error(capsys, "template", "check", body)
    assert (code, error["code"], error["field"]) == (2, "dlt_template_malformed", "body")
    assert error["detail"] == {"offset": 12, "found": "{#var1#}"}


def test_template_check_transactional_without_placeholder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, error = run_json_error(capsys, "template", "check", "Thank you for shopping with us")
    assert (code, error["code"]) == (2, "dlt_template_no_variable")


def test_template_check_unknown_category(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json_error(capsys, "template", "check", OTP_TEMPLATE, "--category", "spam")
    assert (code, error["code"], error["field"]) == (2, "dlt_template_invalid", "category")


def test_template_check_empty_body(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json_error(capsys, "template", "check", "")
    assert (code, error["code"]) == (2, "dlt_template_invalid")


# ----------------------------------------------------------------------------- template match


def test_template_match_table_shows_the_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "template", "match", OTP_TEMPLATE, OTP_TEXT)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "matched",
        "",
        "#  kind         value",
        '1  {#numeric#}  "482913"',
    ]


def test_template_match_json(capsys: pytest.CaptureFixture[str]) -> None:
    body = "Hi {#var#}, your code is {#numeric#}"
    code, data = run_json(capsys, "template", "match", body, "Hi Priya Sharma, your code is 7731")
    assert code == 0
    assert data == {
        "matched": True,
        "values": [
            {"index": 1, "kind": "var", "value": "Priya Sharma"},
            {"index": 2, "kind": "numeric", "value": "7731"},
        ],
    }


def test_template_match_without_placeholders(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = run_json(capsys, "template", "match", "Thank you", "Thank you")
    assert (code, data) == (0, {"matched": True, "values": []})


def test_template_mismatch_names_the_offset_and_expected_literal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = "Your OTP is 482913. Dont share it with anyone. - ACME"
    code, out, err = run(capsys, "template", "match", OTP_TEMPLATE, text)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert lines[0].startswith("error: dlt_template_mismatch: ")
    assert "  offset: 22" in lines
    code, error = run_json_error(capsys, "template", "match", OTP_TEMPLATE, text)
    assert (code, error["code"], error["field"]) == (2, "dlt_template_mismatch", "content")
    assert error["detail"]["offset"] == 22
    assert error["detail"]["expected"].startswith(" not share")


def test_template_match_wrong_value_type(capsys: pytest.CaptureFixture[str]) -> None:
    text = OTP_TEXT.replace("482913", "48a913")
    code, error = run_json_error(capsys, "template", "match", OTP_TEMPLATE, text)
    assert (code, error["code"]) == (2, "dlt_variable_type")
    assert error["detail"] == {"placeholder": 1, "kind": "numeric"}


def test_template_match_value_too_long(capsys: pytest.CaptureFixture[str]) -> None:
    text = OTP_TEXT.replace("482913", "4" * 31)
    code, error = run_json_error(capsys, "template", "match", OTP_TEMPLATE, text)
    assert (code, error["code"]) == (2, "dlt_variable_too_long")
    assert (error["detail"]["length"], error["detail"]["limit"]) == (31, 30)


def test_template_match_malformed_body(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json_error(capsys, "template", "match", "OTP #VAR# ok", "OTP 1 ok")
    assert (code, error["code"]) == (2, "dlt_template_malformed")


# ----------------------------------------------------------------------------- failures


def _explode(_args: object) -> object:
    raise RuntimeError("boom with message content 482913")


def test_unexpected_failure_exits_1_without_echoing_its_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_run_version", _explode)
    code, out, err = run(capsys, "version")
    assert (code, out) == (1, "")
    assert err.startswith("error: internal_error: unexpected RuntimeError")
    assert "482913" not in err
    code, error = run_json_error(capsys, "version")
    assert (code, error["code"]) == (1, "internal_error")
    assert "482913" not in error["message"]


def test_traceback_flag_reraises_unexpected_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_run_version", _explode)
    with pytest.raises(RuntimeError, match="boom"):
        main(["--traceback", "version"])


# ----------------------------------------------------------------------------- routes


ROUTE_PASSWORD = "s3cr3t"  # SMPP 3.4: at most 8 characters


@pytest.fixture
def database_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A migrated SQLite file, upgraded through the CLI as an operator would."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    code, out, err = run(capsys, "db", "upgrade", "--database-url", url)
    assert code == 0, err
    assert "up to date" in out
    return url


def add_route(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    name: str = "agg1",
    *extra: str,
) -> tuple[int, str, str]:
    monkeypatch.setenv("AGG1_PASSWORD", ROUTE_PASSWORD)
    return run(
        capsys,
        "routes",
        "add",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        "2775",
        "--system-id",
        "bsend",
        "--password-env",
        "AGG1_PASSWORD",
        "--database-url",
        url,
        *extra,
    )


def test_routes_add_reads_the_password_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    code, out, err = add_route(
        capsys,
        monkeypatch,
        database_url,
        "agg1",
        "--tps",
        "500",
        "--window",
        "8",
        "--category",
        "transactional",
        "--category",
        "service_implicit",
        "--dlt-pe-id-tag",
        "0x1500",
        "--tlv-nul",
        "--id-mode",
        "hex_to_decimal",
    )
    assert (code, err) == (0, "")
    assert out.startswith("added route agg1")
    assert "127.0.0.1:2775" in out
    assert ROUTE_PASSWORD not in out

    from bharatsend_core import BharatSend

    with BharatSend.from_url(database_url) as bs:
        config = bs.get_route("agg1")
    assert config.connection.password == ROUTE_PASSWORD
    assert dict(config.connection.dlt_tlvs) == {"pe_id": 0x1500, "template_id": 0x1401}
    assert config.connection.tlv_nul_terminated is True
    assert config.connection.id_mode == "hex_to_decimal"
    assert config.route.tps == 500
    assert config.route.window == 8
    assert {c.value for c in config.route.categories} == {"transactional", "service_implicit"}


def test_routes_add_json_shows_the_tags_in_hex_and_no_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    code, out, err = add_route(
        capsys, monkeypatch, database_url, "agg1", "--dlt-pe-id-tag", "0x1500", "--json"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["name"] == "agg1"
    assert data["connection"]["dlt_tlvs"] == {"pe_id": "0x1500", "template_id": "0x1401"}
    assert "password" not in data["connection"]
    assert ROUTE_PASSWORD not in out


def test_routes_add_without_the_password_variable_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.delenv("NO_SUCH_PASSWORD_VAR", raising=False)
    code, err = run_json_error(
        capsys,
        "routes",
        "add",
        "agg1",
        "--host",
        "127.0.0.1",
        "--port",
        "2775",
        "--system-id",
        "bsend",
        "--password-env",
        "NO_SUCH_PASSWORD_VAR",
        "--database-url",
        database_url,
    )
    assert code == 2
    assert err["code"] == "invalid_argument"
    assert err["field"] == "password_env"
    assert "NO_SUCH_PASSWORD_VAR" in err["message"]


def test_routes_add_twice_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    assert add_route(capsys, monkeypatch, database_url)[0] == 0
    code, _out, err = add_route(capsys, monkeypatch, database_url)
    assert code == 2
    assert err.startswith("error: ")


def test_routes_list_text_and_json_never_print_the_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    code, out, _ = run(capsys, "routes", "list", "--database-url", database_url)
    assert code == 0
    assert "no routes" in out

    assert add_route(capsys, monkeypatch, database_url, "agg1", "--tps", "100")[0] == 0
    assert add_route(capsys, monkeypatch, database_url, "agg2", "--priority", "1")[0] == 0

    code, out, err = run(capsys, "routes", "list", "--database-url", database_url)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["agg1", "agg2"]
    assert "enabled" in lines[0]
    assert "tps=100.0" in lines[0]
    assert ROUTE_PASSWORD not in out

    code, data = run_json(capsys, "routes", "list", "--database-url", database_url)
    assert code == 0
    assert [r["name"] for r in data["routes"]] == ["agg1", "agg2"]
    assert all("password" not in r["connection"] for r in data["routes"])
    assert ROUTE_PASSWORD not in json.dumps(data)


def test_routes_show_prints_the_whole_route(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    assert add_route(capsys, monkeypatch, database_url, "agg1", "--prefix", "+9198")[0] == 0
    code, out, err = run(capsys, "routes", "show", "agg1", "--database-url", database_url)
    assert (code, err) == (0, "")
    data = json.loads(out)  # show prints JSON even without --json
    assert data["name"] == "agg1"
    assert data["prefixes"] == ["+9198"]
    assert data["connection"]["system_id"] == "bsend"
    assert data["connection"]["resend_unknown"] == [
        "government",
        "service_implicit",
        "transactional",
    ]
    assert ROUTE_PASSWORD not in out


def test_routes_disable_and_enable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    assert add_route(capsys, monkeypatch, database_url)[0] == 0

    code, out, _ = run(capsys, "routes", "disable", "agg1", "--database-url", database_url)
    assert code == 0
    assert out.split()[:2] == ["agg1", "disabled"]
    code, data = run_json(capsys, "routes", "show", "agg1", "--database-url", database_url)
    assert data["enabled"] is False

    code, data = run_json(capsys, "routes", "enable", "agg1", "--database-url", database_url)
    assert code == 0
    assert data["enabled"] is True
    code, data = run_json(capsys, "routes", "list", "--database-url", database_url)
    assert [r["enabled"] for r in data["routes"]] == [True]


def test_routes_update_changes_only_what_is_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    assert add_route(capsys, monkeypatch, database_url, "agg1", "--tps", "500")[0] == 0
    monkeypatch.setenv("AGG1_NEW_PASSWORD", "newpass")
    code, out, err = run(
        capsys, "routes", "update", "agg1", "--port", "2776", "--password-env",
        "AGG1_NEW_PASSWORD", "--database-url", database_url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith("updated route agg1")
    assert "newpass" not in out

    from bharatsend_core import BharatSend

    with BharatSend.from_url(database_url) as bs:
        config = bs.get_route("agg1")
    assert config.connection.port == 2776
    assert config.connection.password == "newpass"
    assert config.route.tps == 500  # untouched

    code, _out, err = run(capsys, "routes", "update", "agg1", "--database-url", database_url)
    assert code == 2
    assert "invalid_argument" in err
    code, _out, err = run(
        capsys, "routes", "update", "agg1", "--port", "0", "--database-url", database_url
    )
    assert code == 2


def test_update_route_refuses_unknown_settings() -> None:
    from bharatsend_core import BharatSend
    from bharatsend_core.domain.errors import InvalidArgument

    with BharatSend.in_memory(key_pepper="a-test-pepper-of-sufficient-length") as bs:
        bs.add_route("agg1", host="127.0.0.1", port=2775, system_id="bsend", password="secret")
        with pytest.raises(InvalidArgument):
            bs.update_route("agg1", colour="blue")
        assert bs.update_route("agg1", weight=7, enabled=False).route.weight == 7


@pytest.mark.parametrize("verb", ["show", "disable", "enable", "update"])
def test_unknown_route_is_route_not_found(
    capsys: pytest.CaptureFixture[str], database_url: str, verb: str
) -> None:
    extra = ["--port", "2776"] if verb == "update" else []
    code, out, err = run(capsys, "routes", verb, "nope", *extra, "--database-url", database_url)
    assert code == 2
    assert out == ""
    assert err.startswith("error: route_not_found: ")

    code, envelope = run_json_error(
        capsys, "routes", verb, "nope", *extra, "--database-url", database_url
    )
    assert code == 2
    assert envelope["code"] == "route_not_found"


def test_routes_use_bharatsend_database_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("BHARATSEND_DATABASE_URL", url)
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert url in out
    monkeypatch.setenv("AGG1_PASSWORD", ROUTE_PASSWORD)
    code, _out, err = run(
        capsys,
        "routes",
        "add",
        "agg1",
        "--host",
        "127.0.0.1",
        "--port",
        "2775",
        "--system-id",
        "bsend",
        "--password-env",
        "AGG1_PASSWORD",
    )
    assert (code, err) == (0, "")
    code, data = run_json(capsys, "routes", "list")
    assert [r["name"] for r in data["routes"]] == ["agg1"]

    # --database-url wins over the environment: the other database has no routes.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert run(capsys, "db", "upgrade", "--database-url", other)[0] == 0
    code, data = run_json(capsys, "routes", "list", "--database-url", other)
    assert data["routes"] == []


# ----------------------------------------------------------------------------- worker


def _wait_for_sigterm_handler(pid: int, timeout: float) -> None:
    """Wait until the process catches SIGTERM (Linux: ``SigCgt`` in /proc), so the signal
    reaches the worker's handler rather than killing a process still importing."""
    import signal
    import time

    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            return  # no procfs (or the process ended): rely on the fixed wait
        if int(fields.get("SigCgt", "0").strip(), 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.05)


_PINNABLE = hasattr(os, "sched_getaffinity")


@pytest.mark.parametrize(
    "pin", [False, pytest.param(True, marks=pytest.mark.skipif(not _PINNABLE, reason="Linux"))]
)
def test_worker_stops_cleanly_on_sigterm(
    capsys: pytest.CaptureFixture[str], database_url: str, pin: bool
) -> None:
    import signal
    import time

    cpu = max(os.sched_getaffinity(0)) if pin else None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bharatsend_core.cli",
            "worker",
            "--database-url",
            database_url,
            "--no-sandbox",
            *([] if cpu is None else ["--cpus", str(cpu)]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        _wait_for_sigterm_handler(proc.pid, timeout=15.0)
        assert proc.poll() is None, proc.communicate()
        if cpu is not None:
            assert os.sched_getaffinity(proc.pid) == {cpu}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped: 0 sent, 0 failed" in out
    assert out.startswith("worker ")
    if cpu is not None:
        assert f"pinned to CPUs [{cpu}]" in err


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [("--cpus", "1-0", "cpus"), ("--receipt-threads", "0", "receipt_threads")],
)
def test_worker_refuses_a_bad_option_before_opening_the_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, value: str, field: str
) -> None:
    database = tmp_path / "never.db"
    code, error = run_json_error(
        capsys, "worker", "--database-url", f"sqlite:///{database}", option, value
    )
    assert code == 2
    assert error["code"] == "invalid_argument"
    assert error["field"] == field
    assert not database.exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [("webhook-worker", "webhook worker stopped: 0 attempts")],
)
def test_webhook_worker_stops_cleanly_on_sigterm(
    database_url: str, command: str, expected: str
) -> None:
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "bharatsend_core.cli", command, "--database-url", database_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        _wait_for_sigterm_handler(proc.pid, timeout=15.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert expected in out


def test_webhooks_allow_private_comes_from_the_environment() -> None:
    from bharatsend_core import Settings

    assert Settings.resolve({}).webhooks_allow_private is False
    on = Settings.resolve({"BHARATSEND_WEBHOOKS_ALLOW_PRIVATE": "1"})
    assert on.webhooks_allow_private is True
