"""``pyfn runtimes``: the Node.js runtime calendar as a person reads it."""

from __future__ import annotations

import datetime as dt

from pyfn_action.runtime import noderuntimes


def render_runtimes(on: dt.date) -> str:
    """The calendar on day ``on``: every runtime, its state, and pyfn's pick per generation."""
    described = noderuntimes.describe(on)
    head = (
        "runtime",
        "generations",
        "stack",
        "glibc",
        "deprecated",
        "decommissioned",
        "on " + described["today"],
    )
    rows = [head]
    for r in described["runtimes"]:
        gens = " and ".join(("1st", "2nd")[g - 1] for g in r["generations"])
        state = r["state"]
        if state == "supported" and r["days_to_deprecation"] <= described["warn_days"]:
            state = f"supported, deprecated in {r['days_to_deprecation']} days"
        if not r["framework_runs_on"]:
            state += " (the framework does not run on it)"
        rows.append(
            (r["name"], gens, r["stack"], r["glibc"], r["deprecated"], r["decommissioned"], state)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    engines = " and ".join(described["framework_engines"]) or "any"
    lines += ["", f"pyfn picks, for a function with no node_runtime set (on {described['today']}):"]
    for gen, label in (("1", "1st gen"), ("2", "2nd gen")):
        pick = described["picks"][gen]
        lines.append(
            f"  {label}: {pick}"
            if pick
            else f"  {label}: none (every runtime it offers is decommissioned: upgrade pyfn)"
        )
    lines += [
        "  the newest runtime the generation offers that is not decommissioned and that the "
        f"Node.js Functions Framework runs on (node {engines})",
        "",
        f"A runtime is warned about from {described['warn_days']} days before its deprecation; "
        "a decommissioned one is never deployed.",
        f"Calendar read from Google's runtime support schedule on {described['read']} "
        "(pyfn_action/data/node-runtimes.toml).",
    ]
    return "\n".join(lines) + "\n"
