"""Micro-benchmark of DKIM signing: `tidings.domains.dkim.sign` on messages `mime.build`
made, one core, keys loaded once (as the dispatcher's `KeyCache` keeps them).

    python bench/dkim_micro.py [--count 5000]

Builds --count personalised messages of about 3 KB (html + text, the unsubscribe
headers), then signs each with an RSA 2048 key, then an Ed25519 key, and prints the
signatures per CPU second of the signing thread (per core, whatever else runs on the
machine), the mean CPU µs per message, and the wall-clock rate beside it. It then splits
the RSA figure: the bare RSA private-key operation (`cryptography`, i.e. OpenSSL) on
the same data, and the rest (canonicalisation, body hash, header) measured as signing
with Ed25519 minus its own bare operation. Messages are built before timing starts, so
only signing is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from tidings.content.mime import Address, Email, build
from tidings.domains.dkim import Algorithm, SigningKey, generate, sign

PARAGRAPH = (
    "Bonjour {name}, nous sommes ravis de vous inviter à la soirée de lancement de notre "
    "nouvelle collection. Réservez votre place avant vendredi : les places sont limitées."
)


def messages(count: int) -> list[bytes]:
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        name = f"Adèle Lovelace{i}"
        text = "\n\n".join([PARAGRAPH.format(name=name)] * 6)
        html = "".join(f"<p>{PARAGRAPH.format(name=name)}</p>\n" for _ in range(6))
        out.append(
            build(
                Email(
                    sender=Address("news@mail.example.com", "Éditions Tidings"),
                    to=Address(f"user{i}@example.com", name),
                    subject="Café — votre invitation au lancement",
                    text=text,
                    html=html,
                    message_id=f"{i}.42@mail.example.com",
                    date=now,
                    headers=(
                        ("List-Unsubscribe", f"<https://example.com/u/{i:08x}>"),
                        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                    ),
                )
            )
        )
    return out


def rate(fn: Callable[[bytes], object], batch: list[bytes]) -> float:
    """Calls per CPU second of `fn` over `batch`: this thread's CPU time, not the wall
    clock, so that other processes sharing the core do not count (the wall-clock rate
    is printed too, by `main`, for a machine to itself)."""
    fn(batch[0])  # warm caches outside the timing
    started, wall = time.thread_time(), time.perf_counter()
    for message in batch:
        fn(message)
    cpu, wall = time.thread_time() - started, time.perf_counter() - wall
    WALL.append(len(batch) / wall)
    return len(batch) / cpu


WALL: list[float] = []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=5_000)
    args = parser.parse_args()
    batch = messages(args.count)
    size = sum(map(len, batch)) // len(batch)
    print(f"{args.count:,} messages of {size:,} bytes on average, one core\n")
    stamp = int(time.time())
    keys = {
        algorithm: SigningKey.load(
            domain="mail.example.com",
            selector="bench",
            algorithm=algorithm,
            private_pem=generate(algorithm).private_pem,
        )
        for algorithm in Algorithm
    }
    signed: dict[Algorithm, float] = {}
    for algorithm, key in keys.items():
        signed[algorithm] = rate(lambda m, k=key: sign(m, [k], timestamp=stamp), batch)
        print(f"sign {algorithm.tag:<15} {signed[algorithm]:9,.0f}/CPU s  "
              f"{1e6 / signed[algorithm]:7.1f} µs/message  "
              f"(wall clock: {WALL[-1]:,.0f}/s)")  # fmt: skip

    rsa_key = keys[Algorithm.RSA].private
    ed_key = keys[Algorithm.ED25519].private
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
    data = batch[0][:600]  # about what a signature covers: the signed headers
    bare_rsa = rate(lambda _: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()), batch)
    bare_ed = rate(lambda _: ed_key.sign(hashlib.sha256(data).digest()), batch)
    rest = 1e6 / signed[Algorithm.ED25519] - 1e6 / bare_ed
    print(f"\nbare RSA 2048 private-key operation  {bare_rsa:9,.0f}/CPU s  "
          f"{1e6 / bare_rsa:7.1f} µs")  # fmt: skip
    print(f"the rest of a signature (canon., bh, header) {rest:7.1f} µs")
    share = (1e6 / bare_rsa) / (1e6 / signed[Algorithm.RSA]) * 100
    print(f"RSA signing: {share:.0f}% of its time is the RSA operation itself")


if __name__ == "__main__":
    main()
