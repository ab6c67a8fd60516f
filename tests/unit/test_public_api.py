"""The public names are pinned: removing or renaming one is a breaking change."""

from __future__ import annotations

import importlib

import pytest

import bharatsend_core

PINNED = {
    "bharatsend_core": [
        "ERROR_CODES", "BharatSend", "BharatSendError", "Encoding", "PhoneNumber",
        "Segmentation", "Settings", "__version__", "parse_phone", "pin_process", "segment",
    ],
    "bharatsend_core.domain.dlt": [
        "DEFAULT_LIMITS", "DEFAULT_POLICY", "IST", "MAX_PLACEHOLDER_LENGTH", "CallbackWhitelist",
        "Category", "CompiledTemplate", "ContentType", "DltPolicy", "DltVerdict", "DltWarning",
        "Entity", "Header", "HeaderKind", "IndexMatch", "Placeholder", "PlaceholderKind",
        "PlaceholderLimits", "Recipient", "Registry", "RegistryView", "Severity",
        "TelemarketerChain", "Template", "TemplateCache", "TemplateIndex", "UrlPrefix",
        "UrlWhitelist", "check_template", "compile_template", "looks_like_cta",
        "normalise_callback", "required_tokens", "validate", "validate_entity_id",
        "validate_sender_id", "validate_template_id",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(PINNED))
def test_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PINNED[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


@pytest.mark.parametrize(
    "module",
    [
        "bharatsend_core.domain.errors",
        "bharatsend_core.domain.phone",
        "bharatsend_core.domain.encoding",
        "bharatsend_core.domain.message",
        "bharatsend_core.domain.dlt",
    ],
)
def test_every_public_name_has_a_docstring(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [
        name
        for name in mod.__all__
        if callable(getattr(mod, name)) and not (getattr(mod, name).__doc__ or "").strip()
    ]
    assert missing == []


def test_error_codes_are_unique_snake_case_and_carry_an_http_status() -> None:
    codes = bharatsend_core.ERROR_CODES
    assert len(codes) >= 30
    for code, cls in codes.items():
        assert cls.code == code
        assert 400 <= cls.http_status <= 599


def test_the_base_error_cannot_be_raised_directly() -> None:
    from bharatsend_core.domain import errors

    for abstract in (errors.BharatSendError, errors.ClientError, errors.DltViolation):
        with pytest.raises(TypeError):
            abstract("nope")
    err = errors.InvalidPhoneNumber("bad number", field="phone_number")
    assert isinstance(err, ValueError)
    assert err.to_dict() == {"code": "invalid_phone_number", "message": "bad number",
                             "field": "phone_number"}  # fmt: skip
