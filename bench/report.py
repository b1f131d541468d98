"""The issue's targets, judged against a run's results, and the table printed at the end.

Rates (messages/s, recipients/s), latency and memory targets hold at every scale. The
fan-out targets are times for 1,000,000 contacts: at another scale they are scaled in
proportion and marked "(scaled)". "Memory flat" compares each process's peak RSS with the
same setup in a results file of another scale (`--compare`; by default the newest
100,000 run in bench/results when this one is 1,000,000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MILLION = 1_000_000
RSS_LIMIT_MB = 300.0
FAILED = "failed (see below)"
GATEWAY = "SMS gateway capacity"
FANOUT_RULES = "fan-out (skip rules)"


@dataclass(frozen=True)
class Row:
    scenario: str
    setup: str
    figure: str
    value: float | str | None
    target: str = ""
    met: bool | None = None  # None: no target

    @property
    def status(self) -> str:
        if self.figure == FAILED:
            return "FAILED"
        return "" if self.met is None else "met" if self.met else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "setup": self.setup,
            "figure": self.figure,
            "value": self.value,
            "target": self.target,
            "status": self.status,
        }


def _find(results: list[dict[str, Any]], scenario: str, setup: str) -> dict[str, Any] | None:
    for result in results:
        if result.get("scenario") == scenario and result.get("setup") == setup:
            return result
    return None


def _rate(
    rows: list[Row], result: dict[str, Any], key: str, unit: str, minimum: float | None
) -> None:
    value = result[key]
    rows.append(
        Row(
            result["scenario"],
            result["setup"],
            unit,
            value,
            f">= {minimum:,.0f}" if minimum else "",
            value >= minimum if minimum else None,
        )
    )


def _memory(rows: list[Row], result: dict[str, Any]) -> None:
    for label, process in result.get("processes", {}).items():
        peak = process["peak_rss_mb"]
        rows.append(
            Row(
                result["scenario"],
                result["setup"],
                f"peak RSS MB, {label}",
                peak,
                f"<= {RSS_LIMIT_MB:.0f}",
                peak <= RSS_LIMIT_MB,
            )
        )


def evaluate(
    results: list[dict[str, Any]], *, scale: int, compare: dict[str, Any] | None
) -> list[Row]:
    rows: list[Row] = []
    ceiling = next((r for r in results if r.get("scenario") == "smtp-source (ceiling)"), None)
    peers = {r["processes_count"]: r for r in results if r.get("scenario") == "django-post-office"}
    email_targets = {"sqlite-1": 5_000.0, "postgres-2": 10_000.0}
    for result in results:
        if "error" in result:
            rows.append(Row(result["scenario"], result["setup"], FAILED, None))
            continue
        scenario, setup = result["scenario"], result["setup"]
        if scenario in ("smtp-source (ceiling)", "django-post-office", GATEWAY):
            _rate(rows, result, "messages_per_second", "messages/s", None)
        elif scenario == "email end to end":
            _rate(rows, result, "messages_per_second", "messages/s", email_targets.get(setup))
            rows.append(Row(scenario, setup, "wall seconds", result["seconds"]))
            if ceiling and "messages_per_second" in ceiling:
                ratio = result["messages_per_second"] / ceiling["messages_per_second"]
                rows.append(Row(scenario, setup, "ratio to smtp-source", round(ratio, 2)))
            workers = 1 if setup == "sqlite-1" else int(setup.rpartition("-")[2])
            peer = peers.get(workers)
            if peer:
                ratio = result["messages_per_second"] / peer["messages_per_second"]
                minimum = 5.0 if setup == "postgres-2" else None
                rows.append(
                    Row(
                        scenario,
                        setup,
                        f"ratio to post-office ({peer['setup']})",
                        round(ratio, 2),
                        ">= 5" if minimum else "",
                        ratio >= minimum if minimum else None,
                    )
                )
            if "cpu_us_per_message" in result:
                rows.append(
                    Row(scenario, setup, "CPU µs per message", result["cpu_us_per_message"])
                )
            _memory(rows, result)
        elif scenario == "sms end to end":
            _rate(rows, result, "messages_per_second", "messages/s", 20_000.0)
            rows.append(Row(scenario, setup, "wall seconds", result["seconds"]))
            if "cpu_us_per_message" in result:
                rows.append(
                    Row(scenario, setup, "CPU µs per message", result["cpu_us_per_message"])
                )
            _memory(rows, result)
        elif scenario in ("fan-out", FANOUT_RULES):
            limit = (10.0 if setup == "postgres" else 20.0) * scale / MILLION
            scaled = "" if scale == MILLION else " (scaled)"
            rows.append(
                Row(
                    scenario,
                    setup,
                    "seconds",
                    result["seconds"],
                    f"<= {limit:.3g}{scaled}",
                    result["seconds"] <= limit,
                )
            )
        elif scenario == "API intake":
            _rate(rows, result, "recipients_per_second", "recipients/s", 20_000.0)
            rows.append(Row(scenario, setup, "p50 ms", result["p50_ms"]))
            rows.append(
                Row(scenario, setup, "p99 ms", result["p99_ms"], "<= 150", result["p99_ms"] <= 150)
            )
            _memory(rows, result)
    rows.extend(_flat(results, compare))
    return rows


def _flat(results: list[dict[str, Any]], compare: dict[str, Any] | None) -> list[Row]:
    """Peak RSS within 20% of the same process in the run at another scale."""
    if not compare:
        return []
    rows = []
    other_scale = compare.get("scale")
    for result in results:
        if not result.get("scenario", "").endswith("end to end") or "processes" not in result:
            continue
        other = _find(compare.get("results", []), result["scenario"], result["setup"])
        if not other or "processes" not in other:
            continue
        for label, process in result["processes"].items():
            before = other["processes"].get(label, {}).get("peak_rss_mb")
            if not before:
                continue
            change = process["peak_rss_mb"] / before - 1
            rows.append(
                Row(
                    result["scenario"],
                    result["setup"],
                    f"RSS change vs {other_scale:,}, {label}",
                    f"{change:+.0%}",
                    "within ±20%",
                    abs(change) <= 0.2,
                )
            )
    return rows


def _cell(value: float | str | None) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return "" if value is None else str(value)


def table(
    rows: list[Row],
    *,
    title: str,
    errors: Sequence[dict[str, Any]] = (),
    write: Callable[[str], None] = print,
) -> None:
    """The rows under `title`, then each failed scenario's error."""
    headers = ("scenario", "setup", "figure", "value", "target", "status")
    cells = [(r.scenario, r.setup, r.figure, _cell(r.value), r.target, r.status) for r in rows]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    write(title)

    def line(values: tuple[str, ...]) -> str:
        parts = [
            v.rjust(w) if i == 3 else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    write(line(headers))
    write("  ".join("-" * w for w in widths))
    for values in cells:
        write(line(values))
    for result in errors:
        write(f"\n{result['scenario']}, {result['setup']}, failed: {result['error']}")


def markdown(targets: list[dict[str, Any]]) -> str:
    """A results file's `targets` as a Markdown table (for docs/performance.md)."""
    lines = ["| scenario | setup | figure | value | target | status |", "|---|---|---|---|---|---|"]
    for t in targets:
        value = _cell(t["value"])
        lines.append(
            f"| {t['scenario']} | {t['setup']} | {t['figure']} | {value} | {t['target']} "
            f"| {t['status']} |"
        )
    return "\n".join(lines)


def growth(documents: list[dict[str, Any]]) -> str:
    """How the main figures move with the scale, one column per results file."""
    documents = sorted(documents, key=lambda d: d["scale"])
    figures: dict[tuple[str, str, str], dict[int, Any]] = {}
    for document in documents:
        for result in document["results"]:
            if "error" in result:
                continue
            for key, name in (
                ("messages_per_second", "messages/s"),
                ("recipients_per_second", "recipients/s"),
                ("p99_ms", "p99 ms"),
                ("seconds", "seconds"),
                ("max_peak_rss_mb", "peak RSS MB (largest process)"),
            ):
                if key in result:
                    cell = (result["scenario"], result["setup"], name)
                    figures.setdefault(cell, {})[document["scale"]] = result[key]
        for engine, seed in document.get("seeds", {}).items():
            cell = ("seed", engine, "seconds to create")
            figures.setdefault(cell, {})[document["scale"]] = seed["seconds"]
    scales = [d["scale"] for d in documents]
    lines = [
        "| scenario | setup | figure | " + " | ".join(f"{s:,}" for s in scales) + " |",
        "|---|---|---|" + "---|" * len(scales),
    ]
    for (scenario, setup, name), by_scale in figures.items():
        values = " | ".join(_cell(by_scale.get(s)) for s in scales)
        lines.append(f"| {scenario} | {setup} | {name} | {values} |")
    return "\n".join(lines)


def main() -> None:
    """python bench/report.py RESULTS.json [MORE.json …]: Markdown for docs/performance.md
    (one file: its table; several, of different scales: the growth table too)."""
    import json
    import sys
    from pathlib import Path

    if len(sys.argv) < 2:
        raise SystemExit(main.__doc__)
    documents = [json.loads(Path(name).read_text()) for name in sys.argv[1:]]
    last = documents[-1]
    machine = last["machine"]
    print(
        f"scale {last['scale']:,}, commit {last['commit']}, {machine['cores']} cores"
        f" ({machine['cpu_model']}), message {last.get('message_bytes', 0):,} bytes,"
        f" {last['started_at']}\n"
    )
    print(markdown(last["targets"]))
    if len(documents) > 1:
        print()
        print(growth(documents))


if __name__ == "__main__":
    main()
