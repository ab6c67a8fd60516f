"""Template lookup: TemplateIndex against a naive loop over every compiled template.

10,000 realistic templates for one entity (OTPs, order updates, bank alerts,
appointment reminders; 1-5 placeholders each) and 100,000 messages, 90% made
from a registered template and 10% near misses. Prints the median and p99
time per message through ``TemplateIndex.find`` and, measured in the same run
on a sample of the same messages, the naive loop that calls
``CompiledTemplate.match`` on all 10,000 templates; then the ratio.

Run: ``python benchmarks/bench_templates.py [--templates N] [--messages N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import string
import sys
import time

from bharatsend_core.domain.dlt import (
    Category,
    Template,
    TemplateIndex,
    compile_template,
)

ENTITY = "1101234567890123456"

SYLLABLES = [
    "ka", "ra", "ma", "vi", "sha", "na", "pa", "lu", "ta", "ni", "go", "de", "ba", "ji",
    "su", "ro", "ha", "mi", "ve", "zo", "ku", "pri", "an", "tri", "jay", "dev", "lak",
]  # fmt: skip

PRODUCTS = [
    "login", "payment", "sign up", "password reset", "account verification", "KYC update",
    "wallet top-up", "order confirmation", "delivery", "transaction", "device binding",
    "email change", "UPI registration", "card activation", "loan application",
]  # fmt: skip


def brand(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
    return word.capitalize()


def template_body(rng: random.Random, i: int) -> str:
    b = brand(rng)
    code = b.upper()[:6]
    product = rng.choice(PRODUCTS)
    minutes = rng.choice([3, 5, 10, 15, 30])
    kind = i % 5
    if kind == 0:
        return rng.choice(
            [
                f"{{#var#}} is your OTP for {b} {product}. Valid for {minutes} minutes."
                f" Do not share it with anyone. -{code}",
                f"Dear customer, use OTP {{#numeric#}} to complete your {product} on {b}."
                f" It expires in {minutes} min. Never share your OTP. {code}",
                f"Your {b} verification code is {{#numeric#}}. Ref {{#alphanumeric#}}."
                f" Valid {minutes} mins. -Team {b}",
            ]
        )
    if kind == 1:
        return (
            f"Dear {{#var#}}, your order {{#alphanumeric#}} of Rs {{#numeric#}} has been"
            f" {rng.choice(['shipped', 'packed', 'dispatched', 'delivered'])} by {b}."
            f" Track at {{#url#}} -{code}"
        )
    if kind == 2:
        return (
            f"Rs. {{#numeric#}} {rng.choice(['debited from', 'credited to'])} {b} Bank A/c"
            f" XX{{#numeric#}} on {{#var#}}. Avl Bal Rs {{#numeric#}}. Not you? Call {{#cbn#}}"
            f" -{code}"
        )
    if kind == 3:
        return (
            f"Hi {{#var#}}, your appointment with Dr. {b} at {brand(rng)} Clinic is confirmed for"
            f" {{#var#}}. Reply C to cancel. -{code}"
        )
    return (
        f"{b}: Your {product} request {{#alphanumeric#}} is {rng.choice(['received', 'approved'])}."
        f" For help call {{#cbn#}} or visit {{#url#}} -{code}"
    )


def fill(rng: random.Random, body: str) -> str:
    compiled = compile_template(body)
    out = []
    for lit, ph in zip(compiled.literals, (*compiled.placeholders, None), strict=True):
        out.append(lit)
        if ph is None:
            continue
        kind = ph.kind.value
        if kind == "var":
            out.append(rng.choice(["Rahul", "Priya Sharma", "12-Nov-2026 10:30", "482913", "Anil"]))
        elif kind in ("numeric", "number"):
            out.append(str(rng.randint(10, 99999999)))
        elif kind == "alphanumeric":
            out.append("".join(rng.choices(string.ascii_uppercase + string.digits, k=10)))
        elif kind in ("url", "urlott"):
            out.append("https://ex.in/t/" + "".join(rng.choices(string.ascii_lowercase, k=6)))
        elif kind == "cbn":
            out.append("18001234567")
        else:
            out.append("help@example.com")
    return "".join(out)


def build(n_templates: int, n_messages: int, seed: int) -> tuple[list[Template], list[str]]:
    rng = random.Random(seed)
    templates: list[Template] = []
    seen: set[str] = set()
    while len(templates) < n_templates:
        body = template_body(rng, len(templates))
        if body in seen:
            continue
        seen.add(body)
        templates.append(
            Template(
                template_id=str(1107160000000000000 + len(templates)),
                entity_id=ENTITY,
                category=Category.TRANSACTIONAL,
                body=body,
            )
        )
    messages = []
    for _ in range(n_messages):
        text = fill(rng, rng.choice(templates).body)
        if rng.random() < 0.1:  # a near miss: one literal character changed
            pos = rng.randrange(len(text))
            text = text[:pos] + ("X" if text[pos] != "X" else "Y") + text[pos + 1 :]
        messages.append(text)
    return templates, messages


def per_message_ns(fn: object, messages: list[str]) -> list[int]:
    call = fn  # type: ignore[assignment]
    out = []
    clock = time.perf_counter_ns
    for text in messages:
        t0 = clock()
        call(text)  # type: ignore[operator]
        out.append(clock() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--templates", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()

    templates, messages = build(args.templates, args.messages, args.seed)
    t0 = time.perf_counter()
    index = TemplateIndex(templates)
    build_s = time.perf_counter() - t0
    compiled = [compile_template(t.body) for t in templates]

    def naive(text: str) -> list[int]:
        return [i for i, c in enumerate(compiled) if c.match(text) is not None]

    # Correctness on the naive sample: the index finds exactly what the loop finds.
    sample = messages[: args.naive_sample]
    for text in sample:
        want = {templates[i].template_id for i in naive(text)}
        got = {m.template.template_id for m in index.find(text)}
        if want != got:
            print(f"MISMATCH between index and naive loop: {got} != {want}", file=sys.stderr)
            return 1

    indexed = per_message_ns(index.find, messages)
    naive_ns = per_message_ns(naive, sample)
    idx_median = statistics.median(indexed) / 1000
    idx_p99 = statistics.quantiles(indexed, n=100)[98] / 1000
    naive_median = statistics.median(naive_ns) / 1000
    matched = sum(1 for text in messages[:2000] if index.find(text))

    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    print(f"machine: {machine}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"templates: {len(templates)}  messages: {len(messages)}  index build: {build_s:.2f} s")
    print(f"matched (first 2000 messages): {matched / 20:.1f}%")
    print(f"TemplateIndex.find   median {idx_median:9.1f} us   p99 {idx_p99:9.1f} us")
    print(f"naive loop (n={len(sample)})  median {naive_median:9.1f} us")
    print(f"ratio naive/index    {naive_median / idx_median:9.0f}x")
    ok = idx_median <= 50 and naive_median / idx_median >= 100
    print("target (median <= 50 us and >= 100x):", "met" if ok else "NOT MET")
    return 0 if ok else 2


if __name__ == "__main__":
    raise SystemExit(main())
