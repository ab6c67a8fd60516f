"""The DLT registry: per-tenant entities, headers, versioned templates and whitelists."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import HealthCheck, given, settings

from bharatsend_core.domain.dlt import Category, ContentType, Template
from bharatsend_core.domain.errors import AlreadyExists, DltRecordNotFound
from bharatsend_core.ports.storage import Storage, TemplateVersion

from .builders import PE_ID, TEMPLATE_ID, at, entity, header, new_id, template, templates

EXAMPLES = settings(
    max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)


def test_entities_are_per_tenant_sorted_and_unique(storage: Storage) -> None:
    mine, theirs = new_id("ten"), new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dlt.add_entity(mine, entity("300", "C"))
        uow.dlt.add_entity(mine, entity("1000", "A"))
        uow.dlt.add_entity(mine, entity("20", "B"))
        uow.dlt.add_entity(theirs, entity("20", "Theirs"))  # the same PE ID elsewhere is fine
        uow.commit()
    with storage.unit_of_work() as uow:
        assert [e.pe_id for e in uow.dlt.list_entities(mine)] == ["1000", "20", "300"]
        assert uow.dlt.get_entity(mine, "20") == entity("20", "B")
        assert uow.dlt.get_entity(theirs, "20") == entity("20", "Theirs")
        assert uow.dlt.get_entity(mine, "999") is None
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.dlt.add_entity(mine, entity("20", "Again"))


def test_headers_round_trip_update_and_are_case_sensitive(storage: Storage) -> None:
    mine = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dlt.add_header(mine, header("ACMEOT"))
        uow.dlt.add_header(mine, header("acmeot", category=Category.SERVICE_IMPLICIT))
        uow.dlt.add_header(mine, header("123456", category=Category.PROMOTIONAL))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.get_header(mine, "ACMEOT") == header("ACMEOT")
        assert uow.dlt.get_header(mine, "AcmeOt") is None
        assert [h.sender_id for h in uow.dlt.list_headers(mine)] == ["123456", "ACMEOT", "acmeot"]
        assert uow.dlt.list_headers(new_id("ten")) == []
        uow.dlt.update_header(mine, header("ACMEOT", active=False, entity_id="42"))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.get_header(mine, "ACMEOT") == header("ACMEOT", active=False, entity_id="42")


def test_header_errors(storage: Storage) -> None:
    mine = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dlt.add_header(mine, header("ACMEOT"))
        uow.commit()
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.dlt.add_header(mine, header("ACMEOT", active=False))
    with pytest.raises(DltRecordNotFound), storage.unit_of_work() as uow:
        uow.dlt.update_header(mine, header("ZZZZZZ"))
    with pytest.raises(DltRecordNotFound), storage.unit_of_work() as uow:
        uow.dlt.update_header(new_id("ten"), header("ACMEOT"))  # another tenant's header


@EXAMPLES
@given(drawn=templates)
def test_every_template_field_round_trips(storage: Storage, drawn: Template) -> None:
    mine = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dlt.add_template(mine, drawn, at(0))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.get_template(mine, drawn.template_id) == drawn
        assert uow.dlt.list_templates(mine) == [drawn]
        assert uow.dlt.template_history(mine, drawn.template_id) == [
            TemplateVersion(1, drawn, at(0))
        ]


def test_every_template_update_appends_a_version_to_its_history(storage: Storage) -> None:
    mine = new_id("ten")
    v1 = template()
    v2 = evolve(v1, body="Your code is {#var#}.", headers=frozenset({"ACMEOT", "ACMEIN"}))
    v3 = evolve(v2, active=False, content_type=ContentType.UNICODE, name="retired")
    with storage.unit_of_work() as uow:
        uow.dlt.add_template(mine, v1, at(0))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.update_template(mine, v2, at(10)) == 2
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.update_template(mine, v3, at(20)) == 3
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.get_template(mine, TEMPLATE_ID) == v3
        assert uow.dlt.list_templates(mine) == [v3]  # inactive templates are listed too
        assert uow.dlt.template_history(mine, TEMPLATE_ID) == [
            TemplateVersion(1, v1, at(0)),
            TemplateVersion(2, v2, at(10)),
            TemplateVersion(3, v3, at(20)),
        ]


def test_template_errors_and_unknowns(storage: Storage) -> None:
    mine = new_id("ten")
    with storage.unit_of_work() as uow:
        uow.dlt.add_template(mine, template(), at(0))
        uow.commit()
    with pytest.raises(AlreadyExists), storage.unit_of_work() as uow:
        uow.dlt.add_template(mine, template(body="Another {#var#}"), at(1))
    with pytest.raises(DltRecordNotFound), storage.unit_of_work() as uow:
        uow.dlt.update_template(mine, template("999"), at(1))
    with storage.unit_of_work() as uow:
        assert uow.dlt.get_template(new_id("ten"), TEMPLATE_ID) is None  # another tenant's
        assert uow.dlt.get_template(mine, "999") is None
        assert uow.dlt.template_history(mine, "999") == []
        assert uow.dlt.template_history(mine, TEMPLATE_ID)[0].template == template()


def test_templates_are_listed_by_template_id(storage: Storage) -> None:
    mine = new_id("ten")
    with storage.unit_of_work() as uow:
        for template_id in ("30", "1000", "200"):
            uow.dlt.add_template(mine, template(template_id, entity_id=PE_ID), at(0))
        uow.commit()
    with storage.unit_of_work() as uow:
        assert [t.template_id for t in uow.dlt.list_templates(mine)] == ["1000", "200", "30"]


def test_whitelists_add_once_remove_once_and_list_sorted_per_kind(storage: Storage) -> None:
    mine = new_id("ten")
    with storage.unit_of_work() as uow:
        assert uow.dlt.add_whitelist(mine, "url", "https://b.example/")
        assert uow.dlt.add_whitelist(mine, "url", "https://a.example/")
        assert not uow.dlt.add_whitelist(mine, "url", "https://a.example/")
        assert uow.dlt.add_whitelist(mine, "callback", "+911800123456")
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.list_whitelist(mine, "url") == ["https://a.example/", "https://b.example/"]
        assert uow.dlt.list_whitelist(mine, "callback") == ["+911800123456"]
        assert uow.dlt.list_whitelist(new_id("ten"), "url") == []
        assert uow.dlt.remove_whitelist(mine, "url", "https://a.example/")
        assert not uow.dlt.remove_whitelist(mine, "url", "https://a.example/")
        assert not uow.dlt.remove_whitelist(mine, "callback", "https://b.example/")
        uow.commit()
    with storage.unit_of_work() as uow:
        assert uow.dlt.list_whitelist(mine, "url") == ["https://b.example/"]
