"""Prometheus metrics, served at GET /metrics."""

from prometheus_client import Counter, Histogram

CONSUMED = Counter("opsdraft_messages_consumed_total", "Kafka messages consumed", ["topic", "outcome"])
DEAD_LETTERS = Counter("opsdraft_dead_letters_total", "Messages sent to the dead-letter topic", ["source_topic"])
INCIDENTS = Counter("opsdraft_incidents_total", "Incident state changes", ["event"])
DRAFTS = Counter("opsdraft_drafts_total", "Drafts made", ["kind", "model"])
DRAFT_SECONDS = Histogram("opsdraft_draft_seconds", "Time to make a draft", ["kind"],
                          buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600))
SLACK_ACTIONS = Counter("opsdraft_slack_actions_total", "Slack commands and actions handled", ["action"])
WEBHOOKS = Counter("opsdraft_webhooks_total", "Webhook requests", ["source", "outcome"])
