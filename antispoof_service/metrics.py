"""Prometheus metrics of one service process, written in the text exposition format (version 0.0.4) by hand.

Counters and histograms are kept per process: with ``--workers N`` each scrape reaches one worker, so scrape
the workers separately or sum them behind the proxy (README, *Service*).
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Sequence

#: Upper bounds (seconds) of the latency histograms: from a cached page to a long file on a busy machine.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    """Cumulative-bucket histogram of observations (seconds)."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, count in zip((*map(_number, self.buckets), "+Inf"), self.counts, strict=True):
            cumulative += count
            out.append(f'{name}_bucket{{{labels}{sep}le="{bound}"}} {cumulative}')
        braces = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{braces} {_number(self.total)}", f"{name}_count{braces} {self.n}"]
        return out


def _number(value: float) -> str:
    return repr(float(value))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ServiceMetrics:
    """Request counts by route and status, request latency by route, stream window latency, and the gauges read
    from callables at scrape time (in-flight requests, queued requests)."""

    def __init__(self, gauges: dict[str, tuple[str, Callable[[], float]]] | None = None):
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.latency: dict[str, Histogram] = {}
        self.window_latency = Histogram()
        self.gauges = dict(gauges or {})

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[route, status] += 1
            self.latency.setdefault(route, Histogram()).observe(seconds)

    def observe_window(self, seconds: float) -> None:
        """Latency from the end of a streamed window (its last sample received) to its result being sent."""
        with self._lock:
            self.window_latency.observe(seconds)

    def render(self) -> str:
        """The text exposition of every metric."""
        with self._lock:
            lines = ["# HELP antispoof_requests_total HTTP requests answered, by route and status.",
                     "# TYPE antispoof_requests_total counter"]
            lines += [f'antispoof_requests_total{{route="{_label(route)}",status="{status}"}} {count}'
                      for (route, status), count in sorted(self.requests.items())]
            lines += ["# HELP antispoof_request_duration_seconds Time from a request's arrival to its answer.",
                      "# TYPE antispoof_request_duration_seconds histogram"]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.lines("antispoof_request_duration_seconds", f'route="{_label(route)}"')
            lines += ["# HELP antispoof_stream_window_latency_seconds From the last sample of a streamed window to "
                      "its segment result.",
                      "# TYPE antispoof_stream_window_latency_seconds histogram",
                      *self.window_latency.lines("antispoof_stream_window_latency_seconds")]
        for name, (text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {_number(read())}"]
        return "\n".join(lines) + "\n"
