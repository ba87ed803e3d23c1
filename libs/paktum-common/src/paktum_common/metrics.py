"""Prometheus metric helpers: one registry per process, names `paktum_<service>_<thing>_<unit>`."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def counter(service: str, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(f"paktum_{service}_{name}", doc, labels)


def gauge(service: str, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
    return Gauge(f"paktum_{service}_{name}", doc, labels)


def histogram(service: str, name: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
    return Histogram(f"paktum_{service}_{name}", doc, labels, buckets=LATENCY_BUCKETS)


def serve_metrics(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Expose /metrics on `port` for services without their own HTTP server (0: off)."""
    if port:
        start_http_server(port, registry=registry)
