"""Peak memory of a benchmark child: its own, and that of its largest worker process."""

from __future__ import annotations

import resource


def peak_rss_mib() -> dict[str, float]:
    """Stop vex's worker processes (so that they are counted), then read both peaks in MiB."""
    from loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    return {
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def rss_label(result: dict[str, float]) -> str:
    """`main` MiB, plus `+ N per worker` when workers ran."""
    main = f"{result['peak_rss_mib']:,.0f}"
    worker = result.get("worker_rss_mib", 0)
    return f"{main} + {worker:,.0f}/worker" if worker > 1 else main
