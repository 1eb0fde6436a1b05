"""The table of advisor passes, shared by `npc-host status` (summaries from the hub) and `npc-host advisor passes`
(records from the store). Imports rich and the summary model only, so status stays fast."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table

from host.advisor.pass_summary import PassSummary


def passes_table(passes: Iterable[PassSummary]) -> Table:
    table = Table(
        "pass", "server", "trigger", "outcome", "reason", "lines", "tokens in/out", "cached", "recs", "seconds"
    )
    for summary in passes:
        table.add_row(
            str(summary.pass_id),
            summary.server,
            summary.trigger,
            summary.outcome,
            summary.reason or "-",
            str(summary.lines),
            f"{summary.tokens_in}/{summary.tokens_out}",
            str(summary.cache_hits),
            str(summary.recommendations),
            "-" if summary.seconds is None else f"{summary.seconds:.1f}",
        )
    return table
