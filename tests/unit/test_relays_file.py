"""The relays file (CONTRACT §9): parsing, every problem with its line, routing, reloading."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path

import pytest

from dispatcher.errors import DispatcherError
from dispatcher.smtp.relays import (
    Relay,
    RelayPlan,
    RelaysFileError,
    RelaysSource,
    Secret,
    load_relays_file,
    parse_relays,
    relays_file_from_environment,
)

CONTRACT_EXAMPLE = """\
relays:
  primary: {host: smtp1.example.com, port: 587, security: starttls, username: portal, password_env: SMTP1_PASSWORD}
  backup:  {host: smtp2.example.com, port: 25, security: none}
  partner: {host: mx.partner.example, port: 465, security: tls}
routes:                                  # first match wins
  - match: {sender_domain: wholesale.example.com}
    relays: [partner]
  - match: {group: RETAIL}
    relays: [primary, backup]
default: [primary, backup]               # the order is the failover order
"""  # noqa: E501 - verbatim from the contract
ENV = {"SMTP1_PASSWORD": "s3cret-Pa55"}


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(RelaysFileError) as caught:
        parse_relays(textwrap.dedent(text), "relays.yaml", ENV if environ is None else environ)
    assert isinstance(caught.value, DispatcherError)
    return caught.value.problems


def names(relays: tuple[Relay, ...]) -> list[str]:
    return [relay.name for relay in relays]


def test_the_contract_example_is_read_into_relays_routes_and_a_default() -> None:
    plan = parse_relays(CONTRACT_EXAMPLE, "relays.yaml", ENV)

    assert plan.relays == (
        Relay("primary", "smtp1.example.com", 587, "starttls", "portal", Secret("s3cret-Pa55")),
        Relay("backup", "smtp2.example.com", 25, "none"),
        Relay("partner", "mx.partner.example", 465, "tls"),
    )
    assert [(r.sender_domain, r.group, names(r.relays), r.line) for r in plan.routes] == [
        ("wholesale.example.com", None, ["partner"], 6),
        (None, "RETAIL", ["primary", "backup"], 8),
    ]
    assert names(plan.default) == ["primary", "backup"]
    assert plan.source == Path("relays.yaml")
    assert plan.relay("backup").host == "smtp2.example.com"


def test_the_first_matching_route_wins_else_the_default() -> None:
    plan = parse_relays(CONTRACT_EXAMPLE, "relays.yaml", ENV)

    assert names(plan.relays_for("wholesale.example.com", "RETAIL")) == ["partner"]
    assert names(plan.relays_for("WholeSale.Example.COM.", "other")) == ["partner"]
    assert names(plan.relays_for("example.com", "retail")) == ["primary", "backup"]
    assert names(plan.relays_for("example.com", "Retail")) == ["primary", "backup"]
    assert names(plan.relays_for("shop.wholesale.example.com", "B2B")) == ["primary", "backup"]
    assert names(plan.relays_for("example.com", "B2B")) == ["primary", "backup"]


def test_an_internationalised_sender_domain_matches_in_either_form() -> None:
    plan = parse_relays(
        """\
        relays: {a: {host: a.example, security: none}, b: {host: b.example, security: none}}
        routes:
          - {match: {sender_domain: Bücher.de}, relays: [b]}
        default: [a]
        """,
        "relays.yaml",
        {},
    )

    assert plan.routes[0].sender_domain == "xn--bcher-kva.de"
    assert names(plan.relays_for("xn--bcher-kva.de", "X")) == ["b"]
    assert names(plan.relays_for("BÜCHER.DE", "X")) == ["b"]


def test_optional_fields_take_their_defaults() -> None:
    plan = parse_relays(
        """\
        relays:
          plain: {host: 10.0.0.5, security: none}
          submission: {host: "smtp.example.com", security: starttls, timeout: 7.5}
          smtps: {host: "[2001:db8::1]", security: tls, port: "2465", timeout: 3}
        default: plain          # a single name is a list of one
        """,
        "relays.yaml",
        {},
    )

    plain, submission, smtps = plan.relays
    assert (plain.host, plain.port, plain.timeout, plain.username, plain.password) == (
        "10.0.0.5", 25, None, None, None,
    )  # fmt: skip
    assert (submission.port, submission.timeout) == (587, 7.5)
    assert (smtps.host, smtps.port, smtps.timeout) == ("2001:db8::1", 2465, 3.0)
    assert plan.routes == ()
    assert names(plan.default) == ["plain"]


def test_the_password_never_shows_in_a_repr() -> None:
    plan = parse_relays(CONTRACT_EXAMPLE, "relays.yaml", ENV)

    assert "s3cret-Pa55" not in repr(plan)
    assert "s3cret-Pa55" not in str(plan.relay("primary"))
    assert repr(plan.relay("primary").password) == "Secret('**********')"
    assert plan.relay("primary").password.get_secret_value() == "s3cret-Pa55"  # type: ignore[union-attr]


def test_every_problem_is_reported_with_its_line_and_fix() -> None:
    problems = problems_of(
        """\
        relays:
          primary: {host: smtp1.example.com, port: 587, security: starttls, username: portal, password_env: SMTP9_PASSWORD}
          backup:
            host: smtp2.example.com
            port: 70000
            security: starttls
          partner: {host: mx.partner.example, port: 465, security: ssl}
          inline: {host: smtp3.example.com, security: tls, username: me, password: hunter2}
          typo: {host: smtp4.example.com, security: none, usrname: me}
          backup: {host: smtp5.example.com, security: none}
          noport: {host: "smtp6.example.com:587", security: none}
        routes:
          - match: {sender_domain: wholesale.example.com}
            relays: [partnr]
          - match: {group: RETAIL}
            relays: [primary, missing]
        default: []
        colour: blue
        """  # noqa: E501
    )

    assert problems == [
        "relays.yaml:2: relay 'primary': the environment variable SMTP9_PASSWORD (password_env) "
        "is not set; set it in the dispatcher's environment or remove password_env",
        "relays.yaml:5: relay 'backup': port '70000' is not a port number; use 1-65535 "
        "(25 for none, 587 for starttls, 465 for tls)",
        "relays.yaml:7: relay 'partner': unknown security 'ssl'; use none, starttls (port 587) "
        "or tls (port 465)",
        "relays.yaml:8: relay 'inline': a password must not stand in the file; use password_env: "
        "NAME_OF_AN_ENVIRONMENT_VARIABLE that holds it",
        "relays.yaml:9: relay 'typo': unknown key 'usrname'; did you mean 'username'? the keys "
        "are host, port, security, username, password_env, timeout",
        "relays.yaml:10: relays: 'backup' is given twice; keep one",
        "relays.yaml:11: relay 'noport': host 'smtp6.example.com:587' is not a host name; "
        "put the port under port:",
        "relays.yaml:14: route 1: relays: unknown relay 'partnr'; did you mean 'partner'? define "
        "it under relays: or use one of: backup, inline, noport, partner, primary, typo",
        "relays.yaml:16: route 2: relays: unknown relay 'missing'; define it under relays: or "
        "use one of: backup, inline, noport, partner, primary, typo",
        "relays.yaml:17: default is empty; list at least one relay, e.g. [primary, backup]",
        "relays.yaml:18: the file: unknown key 'colour'; the keys are relays, routes, default",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "relays: {a: {host: h, security: none, port: 0}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': port '0' is not a port number",
        ),
        (
            "relays: {a: {host: h, security: none, port: smtp}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': port 'smtp' is not a port number",
        ),
        (
            "relays: {a: {host: h, security: none, port: true}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': port 'true' is not a port number",
        ),
        (
            "relays: {a: {host: h}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': security is missing; add security: none, starttls or tls",
        ),
        (
            "relays: {a: {security: tls}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': host is missing; add host: smtp.example.com",
        ),
        (
            "relays: {a: {host: h, security: tls, password_env: P}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': password_env without username; add username:",
        ),
        (
            "relays: {a: {host: h, security: tls, username: u}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': username without password_env",
        ),
        (
            "relays: {a: {host: h, security: tls, username: u, password_env: 'my pw'}}\n"
            "default: [a]\n",
            "relays.yaml:1: relay 'a': password_env must name an environment variable",
        ),
        (
            "relays: {a: {host: h, security: none, timeout: 0}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': timeout must be a number of seconds above 0 and at most 300",
        ),
        (
            "relays: {a: {host: 'bad host', security: none}}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a': host 'bad host' is not a host name; give a host name",
        ),
        (
            "relays: {a b: {host: h, security: none}}\ndefault: [a b]\n",
            "relays.yaml:1: relay 'a b': a relay name has 1-64 letters",
        ),
        (
            "relays: {a: [h, 25]}\ndefault: [a]\n",
            "relays.yaml:1: relay 'a' must be a mapping (key: value); e.g. {host: smtp.example.com",
        ),
        ("relays: {}\ndefault: [a]\n", "relays.yaml:1: relays: is empty; define at least one"),
        (
            "relays: {a: {host: h, security: none}}\n",
            "relays.yaml:1: default: is missing; add default: [NAME, ...] (the failover order)",
        ),
        ("default: [a]\n", "relays.yaml:1: relays: is missing; define at least one relay"),
        (
            "relays: {a: {host: h, security: none}}\ndefault: [a, a]\n",
            "relays.yaml:2: default: relay 'a' is listed twice; keep one",
        ),
        (
            "relays: {a: {host: h, security: none}}\ndefault: {a: 1}\n",
            "relays.yaml:2: default must be a list of relay names",
        ),
        (
            "relays: {a: {host: h, security: none}}\ndefault:\n",
            "relays.yaml:2: default is empty; list at least one relay",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - match: {group: A, sender_domain: "
            "b.example}\n    relays: [a]\ndefault: [a]\n",
            "relays.yaml:3: route 1: match needs exactly one of sender_domain or group",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - match: {group: 'no spaces'}\n"
            "    relays: [a]\ndefault: [a]\n",
            "relays.yaml:3: route 1: 'no spaces' is not a group code",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - match: {sender_domain: a@b.c}\n"
            "    relays: [a]\ndefault: [a]\n",
            "relays.yaml:3: route 1: 'a@b.c' is not a domain",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - match: {domain: b.example}\n"
            "    relays: [a]\ndefault: [a]\n",
            "relays.yaml:3: route 1: match: unknown key 'domain'; did you mean 'sender_domain'? "
            "the keys are sender_domain, group",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - relays: [a]\ndefault: [a]\n",
            "relays.yaml:3: route 1: match is missing",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - match: {group: X}\n"
            "default: [a]\n",
            "relays.yaml:3: route 1: relays is missing",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n  - match: {group: X}\n    relays: []"
            "\ndefault: [a]\n",
            "relays.yaml:4: route 1: relays is empty",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes:\n"
            "  - {match: {group: X}, relays: [a]}\n"
            "  - {match: {group: x}, relays: [a]}\ndefault: [a]\n",
            "relays.yaml:4: route 2: matches the same as route 1, which comes first",
        ),
        (
            "relays: {a: {host: h, security: none}}\nroutes: {a: 1}\ndefault: [a]\n",
            "relays.yaml:2: routes must be a list",
        ),
        ("- a\n- b\n", "relays.yaml:1: the file must be a mapping (key: value); it needs relays:"),
        ("", "relays.yaml: the file is empty; it needs relays: and default:"),
        ("relays: {a: {host: h\ndefault: [a]\n", "relays.yaml:2: not valid YAML: "),
        ("a: 1\n---\nb: 2\n", "relays.yaml:2: not valid YAML: "),
    ],
)
def test_each_kind_of_problem(text: str, expected: str) -> None:
    problems = problems_of(text, {})

    assert any(p.startswith(expected) for p in problems), problems


def test_a_relay_that_fails_its_checks_is_not_also_reported_as_unknown() -> None:
    problems = problems_of(
        """\
        relays:
          a: {host: h, security: bogus}
        routes:
          - {match: {group: X}, relays: [a]}
        default: [a]
        """,
        {},
    )

    assert len(problems) == 1
    assert problems[0].startswith("relays.yaml:2: relay 'a': unknown security 'bogus'")


def test_the_error_is_one_line_naming_the_first_problem_and_the_count() -> None:
    with pytest.raises(RelaysFileError) as caught:
        parse_relays("relays: {a: {host: h}, b: {security: tls}}\ndefault: [a]\n", "r.yaml", {})

    assert str(caught.value) == (
        "r.yaml:1: relay 'a': security is missing; add security: none, starttls or tls (and 1 more)"
    )
    assert caught.value.path == Path("r.yaml")


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(RelaysFileError) as caught:
        load_relays_file(tmp_path / "missing.yaml", {})

    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'missing.yaml'}: cannot read the relays file (")
    assert "fix DISPATCHER_RELAYS_FILE" in problem


def test_without_a_file_one_relay_serves_everything() -> None:
    plan = RelayPlan.single("localhost", 2525, "starttls", "user", "pw", 20.0)

    (relay,) = plan.relays
    assert relay == Relay("default", "localhost", 2525, "starttls", "user", Secret("pw"), 20.0)
    assert plan.relays_for("example.com", "RETAIL") == (relay,)
    assert plan.routes == ()
    assert plan.source is None
    assert "pw" not in repr(plan).replace("password", "")
    assert RelayPlan.single("h", 25, "none", None, None, None).default[0].password is None
    with pytest.raises(ValueError, match="security must be one of none, starttls, tls"):
        RelayPlan.single("h", 25, "ssl", None, None, None)


def test_a_relay_becomes_the_transports_configuration() -> None:
    plan = parse_relays(CONTRACT_EXAMPLE, "relays.yaml", ENV)

    config = plan.relay("primary").smtp_config(default_timeout=20.0, max_messages_per_connection=50)

    assert (config.host, config.port, config.security, config.username) == (
        "smtp1.example.com", 587, "starttls", "portal",
    )  # fmt: skip
    assert (config.password, config.timeout, config.max_messages_per_connection) == (
        "s3cret-Pa55", 20.0, 50,
    )  # fmt: skip


def test_the_file_is_named_by_the_environment(tmp_path: Path) -> None:
    assert relays_file_from_environment({}) is None
    assert relays_file_from_environment({"DISPATCHER_RELAYS_FILE": " "}) is None
    assert relays_file_from_environment({"DISPATCHER_RELAYS_FILE": "/etc/r.yaml"}) == Path(
        "/etc/r.yaml"
    )


# --- reloading ----------------------------------------------------------------

ONE = "relays: {a: {host: one.example, security: none}}\ndefault: [a]\n"
TWO = "relays: {b: {host: two.example, security: none}}\ndefault: [b]\n"
BROKEN = "relays: {b: {host: two.example, security: nonsense}}\ndefault: [b]\n"


def bump(path: Path, text: str) -> None:
    """Write and move the modification time on, as a later edit would."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_without_a_file_the_source_gives_the_fallback() -> None:
    fallback = RelayPlan.single("localhost", 25, "none", None, None, None)
    source = RelaysSource(None, fallback)

    assert source.plan() is fallback
    assert source.reload() is fallback


def test_a_changed_file_gives_a_new_plan(tmp_path: Path) -> None:
    path = write(tmp_path / "relays.yaml", ONE)
    source = RelaysSource(path, RelayPlan.single("x", 25, "none", None, None, None), environ={})
    first = source.plan()

    assert names(first.default) == ["a"]
    assert source.plan() is first  # unchanged: not read again

    bump(path, TWO)
    assert names(source.plan().default) == ["b"]

    replacement = tmp_path / "new.yaml"
    replacement.write_text(ONE, encoding="utf-8")
    os.replace(replacement, path)  # an atomic rename, as editors and config tools do
    assert names(source.plan().default) == ["a"]


def test_an_invalid_new_file_keeps_the_old_plan_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "relays.yaml", ONE)
    source = RelaysSource(path, RelayPlan.single("x", 25, "none", None, None, None), environ={})
    first = source.plan()
    caplog.set_level(logging.INFO, logger="dispatcher.smtp.relays")

    bump(path, BROKEN)
    assert source.plan() is first
    assert source.plan() is first  # the same broken file is not read (nor logged) again
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "\n" not in message
    assert message.startswith(f"relays file {path} is not valid; still using the previous relays: ")
    assert f"{path}:1: relay 'b': unknown security 'nonsense'" in message

    bump(path, TWO)
    assert names(source.plan().default) == ["b"]

    path.unlink()
    assert names(source.plan().default) == ["b"]
    assert names(source.plan().default) == ["b"]
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2


def test_a_process_does_not_start_with_an_invalid_file(tmp_path: Path) -> None:
    path = write(tmp_path / "relays.yaml", BROKEN)

    with pytest.raises(RelaysFileError, match="unknown security 'nonsense'"):
        RelaysSource(path, RelayPlan.single("x", 25, "none", None, None, None), environ={})


def test_a_forced_reload_reads_the_file_even_when_unchanged(tmp_path: Path) -> None:
    text = """\
    relays: {a: {host: h, security: tls, username: u, password_env: PW}}
    default: [a]
    """
    path = write(tmp_path / "relays.yaml", text)
    environ = {"PW": "old"}
    source = RelaysSource(
        path, RelayPlan.single("x", 25, "none", None, None, None), environ=environ
    )
    assert source.plan().default[0].password == Secret("old")

    environ["PW"] = "new"
    assert source.plan().default[0].password == Secret("old")  # the file did not change
    source.request_reload()  # what a SIGHUP handler calls: no I/O there
    assert source.plan().default[0].password == Secret("new")

    environ["PW"] = "newer"
    assert source.reload().default[0].password == Secret("newer")
