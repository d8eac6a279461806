"""Prometheus metrics of one running monitor, on a registry of its own.

Labels carry only values chosen by code or by the operator's config (platform, finding kind,
severity, stage, outcome, sink id): never a user, a channel, a rule id (ids often spell the
codename they guard) or any message content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds: the text path is milliseconds, attachments and alert delivery up to minutes.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60,
                   120, 300)


class Metrics:
    """Every metric the service exports; `registry` is what /metrics renders."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter(
            "leakwarden_messages", "Messages and edits handed to the pipeline, by outcome",
            ["platform", "outcome"], registry=r)  # scanned | duplicate
        self.bytes_scanned = Counter(
            "leakwarden_scanned_bytes", "Bytes scanned (message text as UTF-8, attachments)",
            ["source"], registry=r)
        self.attachments = Counter(
            "leakwarden_attachments", "Attachments by outcome", ["outcome"], registry=r)
        self.hits = Counter(
            "leakwarden_hits", "Findings recorded in the hit history", ["kind", "severity"],
            registry=r)
        self.scan_seconds = Histogram(
            "leakwarden_scan_seconds", "Time per pipeline stage (text batch, attachment, record)",
            ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.message_to_commit = Histogram(
            "leakwarden_message_to_commit_seconds",
            "From a message's arrival to its hits and outbox rows being committed",
            buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "leakwarden_queue_depth", "Messages waiting in the pipeline queue", registry=r)
        self.attachments_in_flight = Gauge(
            "leakwarden_attachments_in_flight", "Attachments being downloaded or scanned",
            registry=r)
        self.worker_restarts = Counter(
            "leakwarden_scan_worker_restarts", "Attachment worker processes replaced, by reason",
            ["reason"], registry=r)
        self.backfill_read = Gauge(
            "leakwarden_backfill_messages_read", "Messages read by the current or last backfill",
            ["platform"], registry=r)
        self.backfill_running = Gauge(
            "leakwarden_backfill_running", "1 while a backfill pass runs", ["platform"],
            registry=r)
        self.backfill_completed = Gauge(
            "leakwarden_backfill_last_completed_timestamp_seconds",
            "When the last backfill pass finished", ["platform"], registry=r)
        self.watchlist_reloads = Counter(
            "leakwarden_watchlist_reloads", "Watchlist reloads by outcome (applied | rejected)",
            ["outcome"], registry=r)
        self.platform_ready = Gauge(
            "leakwarden_platform_ready", "1 when connected and reading content", ["platform"],
            registry=r)
        self.spill_depth = Gauge(
            "leakwarden_spill_depth",
            "Events acked while the backlog was full, waiting in the store's spill for a slot",
            ["platform"], registry=r)
        self.store_writable = Gauge(
            "leakwarden_store_writable", "1 when the last store write probe succeeded", registry=r)

    def track_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue depth at scrape time."""
        self.queue_depth.set_function(depth)

    def add_collector(self, collector: Collector) -> None:
        """Register a scrape-time collector (e.g. `AlertsCollector`)."""
        self.registry.register(collector)


class AlertsCollector(Collector):
    """Alerts pending / delivered / dead, read at scrape time from the relay and a store snapshot.

    The outbox counts come from `snapshot()` (refreshed by the outbox job), because a scrape is
    synchronous and must never wait on the database.
    """

    def __init__(self, relay_health: Callable[[], dict[str, Any]],
                 snapshot: Callable[[], dict[str, int]]):
        self._relay_health = relay_health
        self._snapshot = snapshot

    def describe(self) -> Iterable[Any]:
        return []  # collected lazily; nothing to check at registration

    def collect(self) -> Iterable[Any]:
        per_sink = CounterMetricFamily(
            "leakwarden_alerts", "Alert deliveries since start, by sink and result",
            labels=["sink", "result"])
        for sink_id, h in sorted(self._relay_health().items()):
            for result, value in (("delivered", h.sent), ("retried", h.retried),
                                  ("dead", h.dead), ("superseded", h.superseded)):
                per_sink.add_metric([sink_id, result], value)
        yield per_sink
        outbox = GaugeMetricFamily(
            "leakwarden_outbox_rows", "Outbox rows by state (pending, sent, dead)", labels=["state"])
        counts = self._snapshot()
        for state in ("pending", "sent", "dead"):
            outbox.add_metric([state], float(counts.get(state, 0)))
        yield outbox
