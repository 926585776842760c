"""The report of scripts/chaos.py: requests by status, failed and unexpected answers,
latency overall and during outages, and per outage its detection and recovery times."""

from __future__ import annotations

import argparse
from collections import Counter

from benchkit.chaos_run import HEALTH_POLL_SECONDS, ChaosServer, Request, Run
from benchkit.common import percentile


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def is_failure(outcome: str) -> bool:
    return outcome.startswith("error") or outcome.startswith("5")


def latency_line(label: str, requests: list[Request]) -> str:
    lat = [r.latency for r in requests]
    return (
        f"  {label:<16} n={len(lat):<6} p50={ms(percentile(lat, 50)):>9}  "
        f"p99={ms(percentile(lat, 99)):>9}  max={ms(max(lat) if lat else None):>9}"
    )


def report(run: Run, opts: argparse.Namespace, server: ChaosServer, stop_note: str) -> int:
    reqs = run.requests
    statuses = Counter(r.outcome for r in reqs)
    failed = [r for r in reqs if is_failure(r.outcome)]
    unexpected = [r for r in reqs if not is_failure(r.outcome) and r.outcome != "200"]
    windows = [o.window() for o in run.outages]
    during = [r for r in reqs if any(a <= r.started <= b for a, b in windows)]
    outside = [r for r in reqs if not any(a <= r.started <= b for a, b in windows)]
    elapsed = max(run.load_ended - run.load_started, 1e-9)

    print()
    print(
        f"chaos: {opts.duration:g} s at {opts.rate:g} req/s (login share {opts.login_share:g}), "
        f"{len(run.outages)} outages, seed {opts.seed}, op timeout {opts.op_timeout_ms} ms, "
        f"health interval {opts.health_interval_ms} ms, argon2 "
        f"{'default' if opts.real_hash else 'cheap (t=1, 1 MiB)'}"
    )
    print(f"requests: {len(reqs)} sent in {elapsed:.1f} s ({len(reqs) / elapsed:.1f}/s)", end="")
    print(f", {run.skipped} not sent (would exceed --max-inflight {opts.max_inflight})")
    by_kind = Counter(r.kind for r in reqs)
    print(f"  by kind: {dict(sorted(by_kind.items()))}")
    print(f"  status counts: {dict(sorted(statuses.items()))}")
    print(f"  failed (5xx or transport error): {len(failed)}")
    if failed:
        for outcome, n in Counter(f"{r.kind} {r.outcome}" for r in failed).most_common(10):
            print(f"    {n:>6}  {outcome}")
    print(f"  unexpected non-2xx (4xx): {len(unexpected)}")
    if unexpected:
        for outcome, n in Counter(f"{r.kind} {r.outcome}" for r in unexpected).most_common(10):
            print(f"    {n:>6}  {outcome}")
    print("latency:")
    print(latency_line("overall", reqs))
    print(latency_line("during outages", during))
    print(latency_line("outside outages", outside))
    for kind in ("login", "me"):
        print(latency_line(f"{kind} (all)", [r for r in reqs if r.kind == kind]))
    print(
        f"health polls: {len(run.health)} answered, errors {dict(run.health_errors) or 0} "
        f"(every {HEALTH_POLL_SECONDS * 1000:.0f} ms)"
    )
    print("outages (detection: start -> /health all memory; recovery: Redis back -> all redis):")
    print(
        f"  {'#':>2} {'kind':<8} {'at':>7} {'Redis away':>10} {'detection':>10} "
        f"{'recovery':>9} {'on memory':>10} {'reqs':>5} {'p99':>9}"
    )
    for i, o in enumerate(run.outages, 1):
        away = None if o.back is None else o.back - o.started
        on_memory = None
        if o.detected_at is not None and o.recovered_at is not None:
            on_memory = o.recovered_at - o.detected_at
        a, b = o.window()
        in_window = [r.latency for r in reqs if a <= r.started <= b]
        note = ""
        if o.detected_at is None:
            note = "  (never seen on memory by /health)"
        elif o.recovered_at is None:
            note = "  (NOT back on redis)"
        print(
            f"  {i:>2} {o.kind:<8} {o.started - run.load_started:>6.1f}s {secs(away):>10} "
            f"{secs(o.detection()):>10} {secs(o.recovery()):>9} {secs(on_memory):>10} "
            f"{len(in_window):>5} {ms(percentile(in_window, 99)):>9}{note}"
        )
    problems = server.log_problems()
    switches = sum("Backend switch" in ln for ln in server.log_lines())
    print(f"server: {stop_note}; log has {switches} backend-switch lines, {len(problems)} errors")
    for line in problems[:10]:
        print(f"    {line[:200]}")
    not_recovered = any(o.detected_at is not None and o.recovered_at is None for o in run.outages)
    if failed or unexpected or not_recovered:
        print("RESULT: FAIL")
        return 1
    print("RESULT: OK (no failed requests)")
    return 0
