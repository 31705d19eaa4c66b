"""The broker guard mirrors kombu's code: fail loudly when kombu changes under it.

``dispatcher/broker/guard.py`` overrides ``_brpop_read`` and ``_get`` of kombu's
Redis channel with copies that differ only in how a queue item is decoded.
kombu is pinned to the minor version those copies were made from
(pyproject.toml); these tests catch a kombu whose methods differ from the
copies kept in ``tests/support/kombu_mirror/``, which a patch release could
bring, or a pin raised without looking.
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path

import kombu
import kombu.transport.redis as redis_transport
import pytest

from dispatcher.broker import guard

MIRRORED_VERSION = (5, 7)
MIRROR = Path(__file__).parents[1] / "support" / "kombu_mirror"
METHODS = ("_brpop_read", "_get")


def _how_to_fix(what: str) -> str:
    return (
        f"{what}. dispatcher/broker/guard.py mirrors these methods of kombu "
        f"{'.'.join(map(str, MIRRORED_VERSION))}: compare kombu's new code with the guard's "
        "copies, carry the changes over (keep only the decode_envelope() difference), then "
        "store kombu's new source in tests/support/kombu_mirror/ and MIRRORED_VERSION here "
        "and raise the kombu pin in pyproject.toml (then scripts/lock)."
    )


def test_the_installed_kombu_is_the_minor_version_the_guard_mirrors() -> None:
    installed = tuple(int(part) for part in kombu.__version__.split(".")[:2])
    assert installed == MIRRORED_VERSION, _how_to_fix(
        f"kombu {kombu.__version__} is installed, the guard mirrors "
        f"{'.'.join(map(str, MIRRORED_VERSION))}"
    )


def test_kombus_mirrored_methods_are_unchanged() -> None:
    changed = []
    for name in METHODS:
        kept = (MIRROR / f"Channel.{name}.txt").read_text("utf-8")
        now = inspect.getsource(getattr(redis_transport.Channel, name))
        if now != kept:
            diff = difflib.unified_diff(
                kept.splitlines(),
                now.splitlines(),
                f"kombu {'.'.join(map(str, MIRRORED_VERSION))} Channel.{name}",
                f"kombu {kombu.__version__} Channel.{name}",
                lineterm="",
            )
            changed.append("\n".join(diff))
    assert not changed, (
        _how_to_fix(f"kombu {kombu.__version__} changed Channel.{'/'.join(METHODS)}")
        + "\n\n"
        + "\n\n".join(changed)
    )


def test_the_guard_overrides_what_kombu_calls() -> None:
    # The guard only works while kombu's own code calls these methods by name
    # and no subclass kombu uses brings its own copy.
    for name in METHODS:
        assert getattr(guard.GuardedChannel, name) is not getattr(redis_transport.Channel, name)
        assert name in vars(redis_transport.Channel), _how_to_fix(
            f"kombu {kombu.__version__} no longer defines Channel.{name}"
        )
        sentinel = getattr(redis_transport, "SentinelChannel", None)
        if sentinel is not None:
            assert name not in vars(sentinel), _how_to_fix(
                f"kombu {kombu.__version__}'s SentinelChannel has its own {name}"
            )
    # The guard calls kombu's _connparams(asynchronous=...) through super().
    parameters = inspect.signature(redis_transport.Channel._connparams).parameters
    assert "asynchronous" in parameters, _how_to_fix(
        f"kombu {kombu.__version__}'s Channel._connparams has no 'asynchronous' parameter"
    )
    assert guard.GuardedTransport.Channel is guard.GuardedChannel


def test_a_changed_method_fails_with_the_fix_and_the_diff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a developer sees when kombu moves, with a changed method put in its place.
    def _get(self: object, queue: str) -> None:
        return None

    monkeypatch.setattr(redis_transport.Channel, "_get", _get)
    with pytest.raises(AssertionError) as failure:
        test_kombus_mirrored_methods_are_unchanged()
    message = str(failure.value)
    assert "dispatcher/broker/guard.py mirrors these methods of kombu 5.7" in message
    assert "tests/support/kombu_mirror/" in message
    assert "-            raise Empty()" in message
    assert "+        return None" in message
