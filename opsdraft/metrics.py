"""Prometheus metrics, served at GET /metrics."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter("opsdraft_messages_consumed_total", "Kafka messages consumed", ["topic", "outcome"])
DEAD_LETTERS = Counter("opsdraft_dead_letters_total", "Messages sent to the dead-letter topic", ["source_topic"])
INCIDENTS = Counter("opsdraft_incidents_total", "Incident state changes", ["event"])
DRAFTS = Counter("opsdraft_drafts_total", "Drafts made", ["kind", "model"])
DRAFT_SECONDS = Histogram("opsdraft_draft_seconds", "Time to make a draft", ["kind"],
                          buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600))
SLACK_ACTIONS = Counter("opsdraft_slack_actions_total", "Slack commands and actions handled", ["action"])
SLACK_EVENTS = Counter("opsdraft_slack_events_total", "Slack events handled (incident channels)", ["event", "outcome"])
ROLE_RESTARTS = Counter("opsdraft_role_restarts_total", "Roles started again after they failed", ["role"])
ROLE_UP = Gauge("opsdraft_role_up", "1 while a role runs, 0 while it waits to start again", ["role"])
WEBHOOKS = Counter("opsdraft_webhooks_total", "Webhook requests", ["source", "outcome"])
HTTP_5XX = Counter("opsdraft_http_5xx_total", "HTTP answers with a 5xx status (or an unhandled error)", ["route"])
FAILURES = Counter("opsdraft_message_failures_total", "Failed attempts to apply a message (retried)",
                   ["topic", "reason"])
PROCESSING_SECONDS = Histogram("opsdraft_processing_seconds", "Time to apply one fetched batch of messages",
                               ["topic"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
OPEN_INCIDENTS = Gauge("opsdraft_open_incidents", "Incidents open now")
CONSUMER_LAG = Gauge("opsdraft_consumer_lag", "Messages behind the partition's end, after the last committed batch "
                     "(from the high watermark in fetch responses)", ["group", "topic", "partition"])
