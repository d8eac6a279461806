"""Alerts that are never lost: routing, sinks, and the relay over the store's durable outbox.

    routing.sinks_for(finding, message, routes)  -> sink ids for `store.record_hits(sinks=...)`
    service.AlertService                         -> sinks + relay + digest jobs from settings
    relay.Relay                                  -> one task per sink over `store.outbox_*`
    registry.build_sinks(settings, ctx, extra)   -> Sink objects; bot adapters add "slack"/"discord"

Sink types: slack-webhook, discord-webhook, webhook (Standard Webhooks signed), pagerduty, email,
log; "slack" and "discord" (bot messages with buttons) come from bot/platforms via extra factories.
"""
