"""What does a DKIM signature cost per e-mail? RSA-2048 against Ed25519.

Makes a fresh key of each kind with openssl, builds N typical e-mails (the
product's multipart/alternative layout, quoted-printable German text, about
5 KB on the wire, each with its own recipient and amounts) and signs every one
through ``DkimKeys.sign``, the way a worker would. Prints milliseconds per
signature (wall clock: mean, median, p99; and CPU time, which other load on the
machine does not inflate) and checks one signature of each with dkimpy. The
requirement: Ed25519 under 1 ms of CPU per e-mail.

    python -m bench.dkim_cost [--emails 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from email.policy import compat32
from pathlib import Path

import dkim  # type: ignore[import-untyped]

from dispatcher.domain.addresses import Mailbox
from dispatcher.mail.dkim import DkimKeys
from dispatcher.mail.render import RenderedEmail, build_message, message_id_for

_WIRE = compat32.clone(linesep="\r\n")
_PARAGRAPH = (
    "Guten Tag {name},\n\n"
    "für Ihr Kundenkonto {account} liegt eine neue Rechnung über {amount} € bereit. "
    "Sie finden sie im Kundenportal unter https://portal.example.com/rechnungen/{account}. "
    "Bitte überweisen Sie den Betrag bis zum 15. des Monats; bei Fragen hilft Ihnen unser "
    "Kundenservice gern weiter.\n"
)


def typical_messages(count: int) -> list[bytes]:
    sender = Mailbox("rechnung@example.com", "Kundenportal Beispiel GmbH")
    messages = []
    for i in range(count):
        text = "\n".join(
            _PARAGRAPH.format(
                name=f"Kunde {i}", account=f"K{i:07d}", amount=f"{i % 997},{i % 100:02d}"
            )
            for _ in range(7)
        )
        html = "".join(f"<p>{line}</p>" for line in text.split("\n") if line)
        email = RenderedEmail(subject=f"Ihre Rechnung {i}", text=text, html=html, locale="de")
        recipient = Mailbox(f"kunde{i}@example.org", f"Kunde {i}")
        built = build_message(
            email,
            sender,
            recipient,
            message_id_for(f"ev-{i}", "invoice", recipient.address, "example.com"),
            datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
        )
        messages.append(built.as_bytes(policy=_WIRE))
    return messages


def make_keys(root: Path) -> dict[str, DkimKeys]:
    keys = {}
    for name, options in {
        "rsa-2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ed25519": ["-algorithm", "ed25519"],
    }.items():
        path = root / name / "example.com" / "bench.key"
        path.parent.mkdir(parents=True)
        subprocess.run(
            ["openssl", "genpkey", *options, "-out", str(path)], check=True, capture_output=True
        )
        keys[name] = DkimKeys.load(root / name)
    return keys


def measure(keys: DkimKeys, messages: list[bytes]) -> tuple[list[float], float, bytes]:
    """Wall-clock milliseconds per signature, CPU milliseconds per signature, the last one."""
    keys.sign(messages[0], "example.com")  # warm up
    timings = []
    signed = b""
    cpu_start = time.process_time()
    for message in messages:
        start = time.perf_counter()
        signed = keys.sign(message, "example.com")
        timings.append((time.perf_counter() - start) * 1000)
    cpu_ms = (time.process_time() - cpu_start) * 1000 / len(messages)
    return timings, cpu_ms, signed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    messages = typical_messages(args.emails)
    sizes = [len(m) for m in messages]
    print(
        f"{len(messages)} e-mails, multipart/alternative, "
        f"{statistics.mean(sizes) / 1024:.1f} KB on average"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, keys in make_keys(Path(tmp)).items():
            timings, cpu_ms, signed = measure(keys, messages)
            txt = "".join(re.findall(r'"([^"]*)"', keys.dns_record("example.com")[0])).encode()
            assert dkim.verify(signed, dnsfunc=lambda *_a, _txt=txt, **_k: _txt), name
            ordered = sorted(timings)
            results[name] = {
                "mean_ms": statistics.mean(timings),
                "cpu_ms": cpu_ms,
                "median_ms": statistics.median(timings),
                "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
                "per_second": 1000 / cpu_ms,
            }
            figures = results[name]
            print(
                f"{name:9} {figures['mean_ms']:.3f} ms per signature (median "
                f"{figures['median_ms']:.3f}, p99 {figures['p99_ms']:.3f}; CPU "
                f"{figures['cpu_ms']:.3f} ms, {figures['per_second']:.0f} signatures/s on one core)"
            )
    cost = results["ed25519"]["cpu_ms"]
    verdict = "meets" if cost < 1 else "MISSES"
    print(f"Ed25519 {verdict} the budget of 1 ms per e-mail ({cost:.3f} ms of CPU)")
    if args.json:
        args.json.write_text(json.dumps({"emails": len(messages), "results": results}, indent=2))


if __name__ == "__main__":
    main()
