"""The sandbox: hostile templates are refused statically or stopped at render."""

from __future__ import annotations

import os
import re
import time

import pytest

from dispatcher.domain.events import template_variables
from dispatcher.domain.kinds import EventType
from dispatcher.errors import TemplateProblem
from dispatcher.mail.templating import check_source, render_text

VARIABLES = template_variables(EventType.PASSWORD_RESET)
CONTEXT = {
    "contact": {"email": "a@example.com", "name": "Anna", "locale": None},
    "reset_url": "https://portal.example.com/r",
    "expires_at": None,
    "username": None,
    "group": {"code": "R", "name": "Retail"},
}

# Static refusals: each names the construct, so the author can fix it.
STATIC = [
    (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "attributes starting with '_' are not allowed (__class__)",
    ),
    ("{{ reset_url|attr('__class__') }}", "the filter 'attr' is not available"),
    ("{{ contact|map(attribute='__class__')|list }}", "the filter 'map' is not available"),
    (
        "{{ cycler.__init__.__globals__.os }}",
        "attributes starting with '_' are not allowed (__init__)",
    ),
    ("{{ self._TemplateReference__context }}", "attributes starting with '_' are not allowed"),
    (
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "attributes starting with '_' are not allowed",
    ),
    ("{{ config.items() }}", "{{ config }} is not offered"),
    ("{{ request.environ }}", "{{ request }} is not offered"),
    ("{{ _loop_guard }}", "names starting with '_' are not allowed"),
    ("{% include '/etc/passwd' %}", ""),  # compiles, fails at render: no loader
    ("{{ contact['__class__'] }}", "attributes starting with '_' are not allowed (__class__)"),
]


@pytest.mark.parametrize(("source", "expected"), STATIC)
def test_hostile_templates_are_refused_or_harmless(source: str, expected: str) -> None:
    findings = [str(f) for f in check_source(source, VARIABLES, "a password-reset e-mail")]
    if expected:
        assert any(expected in f for f in findings), findings
    # Whatever the static check says, rendering must never reach Python
    # internals, the environment or files.
    try:
        output = render_text(source, CONTEXT)
    except TemplateProblem:
        return
    assert "root:" not in output
    assert "<class" not in output
    assert os.environ.get("PATH", "unlikely") not in output


# Runtime bounds: the sandbox alone lets these run away.
RUNAWAY = [
    ("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}", "steps"),
    ("{% for a in range(100000) %}x{% endfor %}", "range() is limited"),
    (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "grows beyond",
    ),
    (
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
        "{% endfor %}{{ ns.s }}",
        "grows beyond",
    ),
    ("{{ 'x' * 1000000000 }}", "repetition"),
    ("{{ [1] * 1000000000 }}", "repetition"),
    ("{{ 2 ** 100000000 }}", "power is too large"),
    ("{{ '%0999999d' % 1 }}", "format widths"),
    ("{{ '%.99999f' % 1.0 }}", "format widths"),
    ("{{ '%*d' % (999999999, 1) }}", "format widths"),
    ("{{ '{:>999999999}'.format(1) }}", "format widths"),
    ("{{ '{0:>{1}}'.format(1, 999999999) }}", "format widths"),
    ("{{ '%s'|format(1) ~ '%0999999d'|format(1) }}", "format widths"),
    ("{{ 'x'.center(999999999) }}", "width"),
    ("{{ 'x'.ljust(999999999) }}", "width"),
    ("{{ 'x'|center(999999999) }}", "width"),
    ("{{ ('a' * 1000)|replace('a', 'b' * 1000) }}", "replace would grow"),
    ("{{ ('a' * 1000).replace('a', 'b' * 1000) }}", "replace would grow"),
    ("{{ ('x\n' * 40000)|indent(500) }}", "indent would grow"),
    ("{{ ''.join(['x' * 90000, 'y' * 90000]) }}", "join would grow"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses too deeply"),
    ("{% for i in range(9000) %}{{ 'x' * 50 }}{% endfor %}", "output grows beyond"),
]


@pytest.mark.parametrize(("source", "reason"), RUNAWAY)
def test_runaway_templates_stop_quickly_with_a_reason(source: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateProblem, match=re.escape(reason)):
        render_text(source, CONTEXT)
    # Generous: the budget is one second; a leak of the bound would take minutes.
    assert time.monotonic() - started < 5


def test_templates_cannot_mutate_data() -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        render_text("{% set l = [1] %}{{ l.append(2) }}", CONTEXT)


def test_strict_undefined_refuses_unknown_names_at_render() -> None:
    with pytest.raises(TemplateProblem, match="'nothing' is undefined"):
        render_text("{{ nothing }}", CONTEXT)


def test_ordinary_templates_render() -> None:
    source = (
        "{% if contact.name %}Hallo {{ contact.name|upper }}{% endif %}, "
        "{{ reset_url }} {{ [1, 2, 3]|join('-') }} {{ '%05d'|format(42) }} "
        "{{ '2026-11-27T10:00:00+01:00'|datetime }}"
    )
    assert check_source(source, VARIABLES, "x") == []
    assert render_text(source, CONTEXT) == (
        "Hallo ANNA, https://portal.example.com/r 1-2-3 00042 27.11.2026, 10:00 Uhr (UTC+01:00)"
    )


def test_datetime_follows_the_language() -> None:
    value = "{{ '2026-11-27T10:00:00Z'|datetime }} / {{ '2026-11-27T10:00:00Z'|datetime('date') }}"
    assert render_text(value, CONTEXT, locale="de-AT") == "27.11.2026, 10:00 Uhr (UTC) / 27.11.2026"
    # Other languages by Babel (CLDR): medium date, short time, the offset as given.
    assert render_text(value, CONTEXT, locale="en") == (
        "Nov 27, 2026, 10:00\u202fAM (UTC) / Nov 27, 2026"
    )
    assert render_text(value, CONTEXT, locale="en-GB") == "27 Nov 2026, 10:00 (UTC) / 27 Nov 2026"
    assert render_text(value, CONTEXT, locale="fr-CH") == (
        "27 nov. 2026, 10:00 (UTC) / 27 nov. 2026"
    )
    # An unknown locale falls back to its language, then to English.
    assert render_text(value, CONTEXT, locale="it-XX") == "27 nov 2026, 10:00 (UTC) / 27 nov 2026"
    assert render_text(value, CONTEXT, locale="tlh") == render_text(value, CONTEXT, locale="en")
    # The time is never converted: a timestamp with an offset shows that offset.
    offset = "{{ '2026-11-27T23:30:00-05:00'|datetime }}"
    assert render_text(offset, CONTEXT, locale="en-GB") == "27 Nov 2026, 23:30 (UTC-05:00)"
    assert render_text(offset, CONTEXT, locale="de") == "27.11.2026, 23:30 Uhr (UTC-05:00)"
