"""The relays file (CONTRACT §9): relays, routes and the default failover order.

``DISPATCHER_RELAYS_FILE`` names a YAML file::

    relays:
      primary: {host: smtp1.example.com, port: 587, security: starttls,
                username: portal, password_env: SMTP1_PASSWORD}
      backup:  {host: smtp2.example.com, port: 25, security: none}
    routes:                              # first match wins
      - match: {sender_domain: wholesale.example.com}
        relays: [backup]
      - match: {group: RETAIL}
        relays: [primary, backup]
    default: [primary, backup]           # the order is the failover order

A relay has ``host`` and ``security`` (``none``, ``starttls`` or ``tls``; TLS
certificates are verified), and may have ``port`` (default 25, 587 or 465 by
security), ``username`` with ``password_env`` (the name of an environment
variable holding the password: passwords never stand in the file) and
``timeout`` (seconds; the process's ``DISPATCHER_SMTP_TIMEOUT`` otherwise). A
route matches one ``sender_domain`` (exactly, in any case; subdomains are other
domains) or one ``group`` (in any case). Without the file, the single relay of
``DISPATCHER_SMTP_*`` serves everything (``RelayPlan.single``).

Every problem is reported, one line each with the file, the line and the fix
(``RelaysFileError.problems``). ``RelaysSource`` reads the file again when it
changes and keeps the plan it has when the new file is invalid.
"""

from __future__ import annotations

import difflib
import hmac
import ipaddress
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import idna
import yaml
from yaml.constructor import SafeConstructor

from dispatcher.domain.fields import GROUP_CODE_PATTERN
from dispatcher.errors import DispatcherError
from dispatcher.smtp.transport import SmtpConfig

log = logging.getLogger(__name__)

RELAYS_FILE_VARIABLE = "DISPATCHER_RELAYS_FILE"
SINGLE_RELAY_NAME = "default"

Security = Literal["none", "starttls", "tls"]
SECURITIES: tuple[str, ...] = get_args(Security)
DEFAULT_PORTS: Mapping[str, int] = {"none": 25, "starttls": 587, "tls": 465}
MAX_TIMEOUT_SECONDS = 300.0

_TOP_KEYS = ("relays", "routes", "default")
_RELAY_KEYS = ("host", "port", "security", "username", "password_env", "timeout")
_ROUTE_KEYS = ("match", "relays")
_MATCH_KEYS = ("sender_domain", "group")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class RelaysFileError(DispatcherError):
    """The relays file was refused; ``problems`` has one line per problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        first = self.problems[0] if self.problems else f"{path}: no details"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


@dataclass(frozen=True)
class Secret:
    """A password; its repr and str never show it."""

    _value: str = field(repr=False)

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Relay:
    """One SMTP relay; ``name`` is what a delivery records as the relay that took it."""

    name: str
    host: str
    port: int
    security: Security
    username: str | None = None
    password: Secret | None = None
    timeout: float | None = None  # None: the process's DISPATCHER_SMTP_TIMEOUT

    def smtp_config(
        self, *, default_timeout: float, max_messages_per_connection: int
    ) -> SmtpConfig:
        """The transport's configuration for this relay."""
        return SmtpConfig(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            timeout=self.timeout if self.timeout is not None else default_timeout,
            max_messages_per_connection=max_messages_per_connection,
        )


def sender_domain_key(domain: str) -> str:
    """A sender domain as routes compare it: lower case, ASCII (IDNA) form, no final dot."""
    name = domain.strip().rstrip(".")
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name.lower()


@dataclass(frozen=True)
class Route:
    """Relays for e-mails from one sender domain or of one customer group."""

    relays: tuple[Relay, ...]
    sender_domain: str | None = None  # as sender_domain_key() gives it
    group: str | None = None  # as written; compared case-insensitively
    line: int | None = None  # where the route stands in the file

    def matches(self, sender_domain: str, group: str) -> bool:
        if self.sender_domain is not None:
            return self.sender_domain == sender_domain_key(sender_domain)
        return self.group is not None and self.group.casefold() == group.strip().casefold()


@dataclass(frozen=True)
class RelayPlan:
    """Which relays serve which e-mail, in failover order."""

    relays: tuple[Relay, ...]
    routes: tuple[Route, ...]
    default: tuple[Relay, ...]
    source: Path | None = None  # the relays file; None for the single relay

    def relays_for(self, sender_domain: str, group: str) -> tuple[Relay, ...]:
        """The first matching route's relays, else the default ones."""
        for route in self.routes:
            if route.matches(sender_domain, group):
                return route.relays
        return self.default

    def relay(self, name: str) -> Relay:
        """The relay of that name (``KeyError`` if there is none)."""
        for relay in self.relays:
            if relay.name == name:
                return relay
        raise KeyError(name)

    @classmethod
    def single(
        cls,
        host: str,
        port: int,
        security: str,
        username: str | None,
        password: str | Secret | None,
        timeout: float | None,
        *,
        name: str = SINGLE_RELAY_NAME,
    ) -> RelayPlan:
        """The plan without a relays file: one relay for everything (``DISPATCHER_SMTP_*``)."""
        if security not in SECURITIES:
            raise ValueError(f"security must be one of {', '.join(SECURITIES)}, not {security!r}")
        secret = Secret(password) if isinstance(password, str) else password
        relay = Relay(
            name=name,
            host=host,
            port=port,
            security=cast(Security, security),
            username=username or None,
            password=secret,
            timeout=timeout,
        )
        return cls(relays=(relay,), routes=(), default=(relay,))


def relays_file_from_environment(environ: Mapping[str, str] | None = None) -> Path | None:
    """``DISPATCHER_RELAYS_FILE``, or None when unset or empty."""
    value = (os.environ if environ is None else environ).get(RELAYS_FILE_VARIABLE, "").strip()
    return Path(value) if value else None


# --- reading and checking the file -------------------------------------------


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


class _Reader:
    """Walks the composed YAML nodes, collecting every problem with its line."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self._problems: list[tuple[int, str]] = []
        self._constructor = SafeConstructor()

    @property
    def problems(self) -> list[str]:
        """Every problem so far, in the order of the file's lines."""
        return [message for _, message in sorted(self._problems, key=lambda p: p[0])]

    def problem(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        where = f"{self.path}:{line}" if line else str(self.path)
        self._problems.append((line, f"{where}: {message}"))

    def count(self) -> int:
        return len(self._problems)

    def value(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(
        self, node: yaml.Node, what: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping's entries by key, reporting unknown and repeated keys."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping (key: value); {_shape_hint(what)}")
            return None
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, f"{what}: a key must be a plain word")
                continue
            key = key_node.value
            if key in entries:
                self.problem(key_node, f"{what}: {key!r} is given twice; keep one")
                continue
            if allowed and key not in allowed:
                if key == "password" and "password_env" in allowed:
                    self.problem(
                        key_node,
                        f"{what}: a password must not stand in the file; use password_env: "
                        "NAME_OF_AN_ENVIRONMENT_VARIABLE that holds it",
                    )
                    entries[key] = (key_node, value_node)  # seen, never used
                else:
                    self.problem(
                        key_node,
                        f"{what}: unknown key {key!r}; {_suggest(key, allowed)}"
                        f"the keys are {', '.join(allowed)}",
                    )
                continue
            entries[key] = (key_node, value_node)
        return entries

    def text(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"{what} must be a single value")
            return None
        if node.tag == "tag:yaml.org,2002:null" or not node.value.strip():
            self.problem(node, f"{what} is empty; give a value or leave the key out")
            return None
        return str(node.value).strip()

    def names(
        self, node: yaml.Node, what: str, valid: Mapping[str, Relay], named: set[str]
    ) -> tuple[Relay, ...] | None:
        """A list of relay names (or one name), each defined under relays:.

        None when a name is wrong or names a relay that failed its own checks
        (reported where it is defined).
        """
        if isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a list of relay names, e.g. [primary, backup]")
            return None
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            items = []
        if not items:
            self.problem(node, f"{what} is empty; list at least one relay, e.g. [primary, backup]")
            return None
        found: list[Relay] = []
        complete = True
        for item in items:
            name = self.text(item, f"{what}: a relay name")
            if name is None:
                complete = False
            elif name in (r.name for r in found):
                self.problem(item, f"{what}: relay {name!r} is listed twice; keep one")
                complete = False
            elif name in valid:
                found.append(valid[name])
            elif name in named:
                complete = False
            else:
                defined = ", ".join(sorted(named)) or "none yet"
                self.problem(
                    item,
                    f"{what}: unknown relay {name!r}; {_suggest(name, sorted(named))}"
                    f"define it under relays: or use one of: {defined}",
                )
                complete = False
        return tuple(found) if complete else None


def _host(written: str) -> str | None:
    """A host name or IP address as the socket wants it (IPv6 without brackets)."""
    bare = written[1:-1] if written.startswith("[") and written.endswith("]") else written
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    return written if _HOST_NAME.fullmatch(written) and len(written) <= 253 else None


def _shape_hint(what: str) -> str:
    if what == "the file":
        return "it needs relays:, default: and optionally routes: (see CONTRACT §9)"
    if what.startswith("relay "):
        return "e.g. {host: smtp.example.com, port: 587, security: starttls}"
    if what.endswith("match"):
        return "e.g. {sender_domain: example.com} or {group: RETAIL}"
    return "see CONTRACT §9 for the layout"


Entries = dict[str, tuple[yaml.Node, yaml.Node]]


def _relay_host(reader: _Reader, what: str, node: yaml.Node, entries: Entries) -> str | None:
    if "host" not in entries:
        reader.problem(node, f"{what}: host is missing; add host: smtp.example.com")
        return None
    value_node = entries["host"][1]
    written = reader.text(value_node, f"{what}: host")
    if written is None:
        return None
    host = _host(written)
    if host is None:
        hint = (
            "put the port under port:"
            if re.fullmatch(r"[^:]+:\d+", written)
            else "give a host name or an IP address"
        )
        reader.problem(value_node, f"{what}: host {written!r} is not a host name; {hint}")
    return host


def _relay_security(reader: _Reader, what: str, node: yaml.Node, entries: Entries) -> str | None:
    if "security" not in entries:
        reader.problem(node, f"{what}: security is missing; add security: none, starttls or tls")
        return None
    value_node = entries["security"][1]
    security = reader.text(value_node, f"{what}: security")
    if security is not None and security not in SECURITIES:
        reader.problem(
            value_node,
            f"{what}: unknown security {security!r}; {_suggest(security, SECURITIES)}"
            "use none, starttls (port 587) or tls (port 465)",
        )
        return None
    return security


def _relay_port(reader: _Reader, what: str, security: str | None, entries: Entries) -> int:
    if "port" not in entries:
        return DEFAULT_PORTS.get(security or "", 25)
    value_node = entries["port"][1]
    value = reader.value(value_node) if isinstance(value_node, yaml.ScalarNode) else None
    if isinstance(value, str) and value.strip().isdigit():  # port: "587"
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        shown = value_node.value if isinstance(value_node, yaml.ScalarNode) else "a list"
        reader.problem(
            value_node,
            f"{what}: port {shown!r} is not a port number; use 1-65535 "
            "(25 for none, 587 for starttls, 465 for tls)",
        )
        return 0
    return value


def _relay_password(reader: _Reader, what: str, entries: Entries) -> Secret | None:
    """The password from the variable password_env names; checks username goes with it."""
    if "password_env" not in entries:
        if "username" in entries and "password" not in entries:
            reader.problem(
                entries["username"][0],
                f"{what}: username without password_env; add password_env: VARIABLE naming "
                "the environment variable that holds the password",
            )
        return None
    env_node = entries["password_env"][1]
    if "username" not in entries:
        reader.problem(env_node, f"{what}: password_env without username; add username:")
    variable = reader.text(env_node, f"{what}: password_env")
    if variable is None:
        return None
    if not _ENV_NAME.fullmatch(variable):
        reader.problem(
            env_node,
            f"{what}: password_env must name an environment variable (letters, digits, '_'), "
            f"not {variable!r}; the password itself goes into that variable",
        )
        return None
    secret = reader.environ.get(variable, "")
    if not secret:
        reader.problem(
            env_node,
            f"{what}: the environment variable {variable} (password_env) is not set; "
            "set it in the dispatcher's environment or remove password_env",
        )
        return None
    return Secret(secret)


def _relay_timeout(reader: _Reader, what: str, entries: Entries) -> float | None:
    if "timeout" not in entries:
        return None
    value_node = entries["timeout"][1]
    value = reader.value(value_node) if isinstance(value_node, yaml.ScalarNode) else None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TIMEOUT_SECONDS
    ):
        reader.problem(
            value_node,
            f"{what}: timeout must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT_SECONDS:.0f}; leave it out for DISPATCHER_SMTP_TIMEOUT",
        )
        return None
    return float(value)


def _relay(reader: _Reader, name: str, key_node: yaml.Node, node: yaml.Node) -> Relay | None:
    what = f"relay {name!r}"
    count = reader.count()
    if not _NAME.fullmatch(name):
        reader.problem(
            key_node, f"{what}: a relay name has 1-64 letters, digits, '_', '.' or '-'; rename it"
        )
    entries = reader.mapping(node, what, _RELAY_KEYS)
    if entries is None:
        return None
    host = _relay_host(reader, what, node, entries)
    security = _relay_security(reader, what, node, entries)
    port = _relay_port(reader, what, security, entries)
    username = (
        reader.text(entries["username"][1], f"{what}: username") if "username" in entries else None
    )
    password = _relay_password(reader, what, entries)
    timeout = _relay_timeout(reader, what, entries)
    if reader.count() > count or host is None or security is None:
        return None
    return Relay(name, host, port, cast(Security, security), username, password, timeout)


def _route_match(
    reader: _Reader, what: str, node: yaml.Node, entries: Entries
) -> tuple[str | None, str | None]:
    """The route's (sender_domain, group); both None after a problem."""
    if "match" not in entries:
        reader.problem(
            node,
            f"{what}: match is missing; add match: {{group: CODE}} or {{sender_domain: DOMAIN}}",
        )
        return None, None
    match_node = entries["match"][1]
    count = reader.count()
    matches = reader.mapping(match_node, f"{what}: match", _MATCH_KEYS)
    if matches is None or reader.count() > count:
        return None, None
    if len(matches) != 1:
        reader.problem(
            match_node,
            f"{what}: match needs exactly one of sender_domain or group; write one route for each",
        )
        return None, None
    ((key, (_, value_node)),) = matches.items()
    value = reader.text(value_node, f"{what}: {key}")
    if value is None:
        return None, None
    if key == "group":
        if not GROUP_CODE_PATTERN.fullmatch(value):
            reader.problem(
                value_node,
                f"{what}: {value!r} is not a group code; use the code as in dispatcher groups "
                "list (1-64 letters, digits, '_', '.' or '-')",
            )
            return None, None
        return None, value
    domain = sender_domain_key(value)
    if "@" in value or not all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")):
        reader.problem(
            value_node,
            f"{what}: {value!r} is not a domain; give the part after the @ of the sender "
            "address, e.g. example.com",
        )
        return None, None
    return domain, None


def _route(
    reader: _Reader, number: int, node: yaml.Node, valid: Mapping[str, Relay], named: set[str]
) -> Route | None:
    what = f"route {number}"
    entries = reader.mapping(node, what, _ROUTE_KEYS)
    if entries is None:
        return None
    sender_domain, group = _route_match(reader, what, node, entries)
    relays = None
    if "relays" not in entries:
        reader.problem(node, f"{what}: relays is missing; add relays: [NAME, ...]")
    else:
        relays = reader.names(entries["relays"][1], f"{what}: relays", valid, named)
    if not relays or (sender_domain is None and group is None):
        return None
    return Route(relays, sender_domain, group, node.start_mark.line + 1)


def _compose(text: str, path: Path) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RelaysFileError(
            path, [f"{path}{line}: not valid YAML: {exc.problem or exc}; fix the syntax there"]
        ) from None
    except yaml.YAMLError as exc:
        raise RelaysFileError(path, [f"{path}: not valid YAML: {exc}"]) from None
    if root is None:
        raise RelaysFileError(
            path, [f"{path}: the file is empty; it needs relays: and default: (CONTRACT §9)"]
        )
    return root


def _relays_section(
    reader: _Reader, root: yaml.Node, top: Entries
) -> tuple[dict[str, Relay], set[str]]:
    """The valid relays by name, and every name defined (valid or not)."""
    relays: dict[str, Relay] = {}
    named: set[str] = set()
    if "relays" not in top:
        reader.problem(root, "relays: is missing; define at least one relay (CONTRACT §9)")
        return relays, named
    relays_node = top["relays"][1]
    entries = reader.mapping(relays_node, "relays", ())
    if entries is not None and not entries:
        reader.problem(relays_node, "relays: is empty; define at least one relay")
    for name, (key_node, value_node) in (entries or {}).items():
        named.add(name)
        relay = _relay(reader, name, key_node, value_node)
        if relay is not None:
            relays[name] = relay
    return relays, named


def _routes_section(
    reader: _Reader, top: Entries, relays: Mapping[str, Relay], named: set[str]
) -> list[Route]:
    if "routes" not in top:
        return []
    routes_node = top["routes"][1]
    if isinstance(routes_node, yaml.ScalarNode) and routes_node.tag.endswith(":null"):
        return []
    if not isinstance(routes_node, yaml.SequenceNode):
        reader.problem(routes_node, "routes must be a list of - match: ... relays: [...]")
        return []
    routes: list[Route] = []
    seen: dict[tuple[str | None, str | None], int] = {}
    for number, item in enumerate(routes_node.value, start=1):
        route = _route(reader, number, item, relays, named)
        if route is None:
            continue
        match = (route.sender_domain, route.group.casefold() if route.group else None)
        if match in seen:
            reader.problem(
                item,
                f"route {number}: matches the same as route {seen[match]}, which comes first "
                "and always wins; remove one",
            )
            continue
        seen[match] = number
        routes.append(route)
    return routes


def parse_relays(
    text: str, path: Path | str, environ: Mapping[str, str] | None = None
) -> RelayPlan:
    """A plan from the file's text; ``RelaysFileError`` lists every problem."""
    path = Path(path)
    reader = _Reader(path, os.environ if environ is None else environ)
    root = _compose(text, path)
    top = reader.mapping(root, "the file", _TOP_KEYS)
    if top is None:
        raise RelaysFileError(path, reader.problems)
    relays, named = _relays_section(reader, root, top)
    routes = _routes_section(reader, top, relays, named)
    default = None
    if "default" not in top:
        reader.problem(root, "default: is missing; add default: [NAME, ...] (the failover order)")
    else:
        default = reader.names(top["default"][1], "default", relays, named)
    if reader.problems or not default:
        raise RelaysFileError(path, reader.problems or [f"{path}: default names no valid relay"])
    return RelayPlan(tuple(relays.values()), tuple(routes), default, path)


def load_relays_file(path: Path | str, environ: Mapping[str, str] | None = None) -> RelayPlan:
    """Read and check the relays file; ``RelaysFileError`` lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RelaysFileError(
            path,
            [
                f"{path}: cannot read the relays file ({reason}); fix {RELAYS_FILE_VARIABLE} "
                "or the file (UTF-8 YAML, readable by the dispatcher)"
            ],
        ) from None
    return parse_relays(text, path, environ)


# --- reloading ----------------------------------------------------------------


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)


class RelaysSource:
    """The current plan: the relays file's, read again when it changes.

    Without a file it is always ``fallback``. The first read must succeed
    (``RelaysFileError`` otherwise: a process does not start with a broken
    file). Later, ``plan()`` notices a change by the file's modification time,
    size and inode (an atomic rename counts), and a new file that is invalid
    or gone leaves the current plan in place with one log line. ``reload()``
    reads the file at once; ``request_reload()`` only marks it for the next
    ``plan()`` and is safe to call from a signal handler (SIGHUP).
    """

    def __init__(
        self,
        path: Path | str | None,
        fallback: RelayPlan,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self._environ = environ
        self._lock = threading.Lock()
        self._reload_requested = False
        if self.path is None:
            self._plan = fallback
            self._seen: tuple[int, int, int, int] | None = None
        else:
            self._seen = _signature(self.path)
            self._plan = load_relays_file(self.path, environ)

    def plan(self) -> RelayPlan:
        if self.path is None:
            return self._plan
        if self._reload_requested or _signature(self.path) != self._seen:
            return self.reload()
        return self._plan

    def request_reload(self) -> None:
        self._reload_requested = True

    def reload(self) -> RelayPlan:
        """Read the file now; keep the current plan if it is invalid."""
        if self.path is None:
            return self._plan
        with self._lock:
            self._reload_requested = False
            self._seen = _signature(self.path)
            try:
                plan = load_relays_file(self.path, self._environ)
            except RelaysFileError as exc:
                log.error(  # noqa: TRY400 - one line, no traceback: the message says it all
                    "relays file %s is not valid; still using the previous relays: %s",
                    self.path,
                    exc,
                )
                return self._plan
            if plan != self._plan:
                log.info(
                    "relays file %s read again: %d relays, %d routes, default %s",
                    self.path,
                    len(plan.relays),
                    len(plan.routes),
                    ", ".join(r.name for r in plan.default),
                )
            self._plan = plan
            return plan
