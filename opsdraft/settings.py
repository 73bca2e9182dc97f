"""All configuration, read from OPSDRAFT_* environment variables (or a .env file) and validated at start."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ROLE_NAMES = ("consumers", "summarizer", "bot", "http")
BUILTIN_MODELS = ("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct", "smollm2", "none")


class SettingsError(ValueError):
    """A setting is wrong; the message names it (as its environment variable)."""


class Topics(BaseSettings):
    """Kafka topic names; OPSDRAFT_TOPIC_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="OPSDRAFT_TOPIC_", extra="ignore")

    alerts: str = "alerts"
    logs: str = "logs"
    tickets: str = "tickets"
    changes: str = "changes"  # deploys, config changes, feature flags, infra actions (consumers/changes.py)
    ticket_replies: str = "ticket-replies"
    dead_letters: str = "dead-letters"
    # Internal topics: roles talk over these instead of importing each other.
    draft_requests: str = "draft-requests"
    drafts_ready: str = "drafts-ready"
    index_updates: str = "index-updates"
    incident_events: str = "incident-events"
    incident_commands: str = "incident-commands"
    similar_requests: str = "similar-requests"  # bot -> summarizer: /incident similar
    similar_results: str = "similar-results"  # summarizer -> bot: the answer
    # For integrations (shapes in opsdraft/events.py): approved stakeholder updates (StatusUpdate) and the
    # action items of approved postmortems (FollowUp).
    incident_updates: str = "incident-updates"
    follow_ups: str = "follow-ups"

    def all(self) -> list[str]:
        return list(self.model_dump().values())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSDRAFT_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".opsdraft")
    model_cache_dir: Path = Path.home() / ".cache" / "opsdraft" / "models"
    database_url: str = ""  # empty: sqlite file in data_dir
    kafka_bootstrap_servers: str = ""  # empty: start the embedded Tansu broker on loopback
    # The largest message the broker takes (Kafka's message.max.bytes, 1 MiB by default; the producer's
    # max_request_size is the same). A webhook body over it is split per alert, or answered 413.
    kafka_max_message_bytes: int = Field(default=1_048_576, ge=65_536)
    consumer_group: str = "opsdraft"
    topics: Topics = Field(default_factory=Topics)

    slack_bot_token: str = "xoxb-opsdraft-local"
    slack_signing_secret: str = "opsdraft-local-signing-secret"
    slack_api_url: str = "https://slack.com/api/"
    slack_incident_channel: str = "C0INCIDENTS"
    slack_support_channel: str = "C0SUPPORT"
    slack_approvers: str = ""  # comma-separated Slack user ids; empty = anyone may approve
    # Per draft kind, overriding slack_approvers when set; user ids (U…/W…) and user group ids (S…).
    slack_approvers_postmortem: str = ""
    slack_approvers_timeline: str = ""
    slack_approvers_ticket_reply: str = ""
    slack_app_token: str = ""  # xapp-…: also receive Slack's requests over Socket Mode (no public URL needed)

    # Security (README "Security"; opsdraft/security.py). `opsdraft run` refuses placeholder or empty Slack
    # credentials, webhooks without a credential and an open /metrics, unless this development switch is on
    # (then it warns at start, webhooks without a credential accept anyone and /metrics is open).
    insecure_dev: bool = False
    # Webhook credentials, one JSON list per receiver so that two are valid while rotating ('["new", "old"]').
    # An entry is a bearer token or "user:password" for basic auth, and, where the sender signs (Grafana,
    # PagerDuty, GitHub), its HMAC signing secret.
    webhook_alertmanager_secrets: list[str] = []
    webhook_grafana_secrets: list[str] = []
    webhook_grafana_signature_header: str = "X-Grafana-Alerting-Signature"
    webhook_grafana_timestamp_header: str = ""  # set as in Grafana's HMAC settings: "<timestamp>:<body>" is signed
    webhook_pagerduty_secrets: list[str] = []  # PagerDuty v3 subscription signing secrets
    webhook_tickets_secrets: list[str] = []  # bearer tokens of generic ticket senders on /webhooks/tickets
    webhook_zendesk_secrets: list[str] = []  # Zendesk webhook signing secrets, on /webhooks/tickets
    webhook_changes_secrets: list[str] = []  # bearer tokens, or GitHub's webhook secret (X-Hub-Signature-256)
    # Oldest signature timestamp accepted (Zendesk, Grafana with a timestamp header), either side of now.
    webhook_max_age_s: float = Field(default=300.0, gt=0)
    metrics_token: str = ""  # GET /metrics needs "Authorization: Bearer <this>"
    # Incidents in Slack (bot/channels.py). Off: today's thread mode, everything in slack_incident_channel.
    slack_channel_per_incident: bool = False
    # The channel's name: {id}, {service}, {title} (slugged); cut to Slack's 80 characters.
    slack_channel_name: str = Field(default="inc-{id}-{service}-{title}", min_length=1, max_length=200)
    slack_incident_responders: str = ""  # user ids (U…/W…) and user groups (S…) invited to every channel
    slack_archive_on_close: bool = True  # archive an incident's channel once its postmortem is posted
    slack_stakeholder_channel: str = ""  # approved status updates go here (and to incident-updates); empty: none
    slack_incident_roles: str = Field(default="comms,scribe,ops", pattern=r"^([a-z][\w-]{0,30}(,[a-z][\w-]{0,30})*)?$")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)

    model: str = "qwen2.5-coder-1.5b"  # "none", "smollm2", "qwen2.5-coder-1.5b", a .gguf path or a model dir
    model_max_new_tokens: int = Field(default=200, ge=16, le=2048)
    # Draft requests made at once: an in-process model decodes them as one batch, a model server gets them
    # as concurrent calls. 1 makes drafts strictly one after another.
    model_parallel_drafts: int = Field(default=4, ge=1, le=32)
    # How search queries are embedded: "auto" is ONNX Runtime with int8 weights on a CPU (when onnxruntime is
    # installed), torch on a GPU; also "torch", "onnx" (float32), "onnx-int8".
    embed_query_runtime: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    runbooks_dir: Path = PROJECT_ROOT / "runbooks"
    # Ticket replies (summarizer/ticket_reply.py). Help-centre articles (*.md, *.html) replies answer from; the
    # bundled folder is a sample for the demo shop: point this at your own.
    help_centre_dir: Path = PROJECT_ROOT / "helpcentre"
    reply_signoff: str = Field(default="Kind regards,\nCustomer support", max_length=500)
    # Who follows up when no source answers: ticket tag or topic word -> team name; else reply_default_team.
    reply_teams: dict[str, str] = {"billing": "billing", "payment": "billing", "refund": "billing",
                                   "shipping": "delivery", "delivery": "delivery", "account": "accounts"}
    reply_default_team: str = Field(default="support", min_length=1, max_length=100)
    # A question counts as answered only when its best help article or exemplar has at least this cosine
    # similarity to it (bench/replies tunes it) and the checker keeps the answer.
    reply_min_similarity: float = Field(default=0.30, ge=0, le=1)

    redaction_mode: Literal["auto", "presidio", "patterns"] = "auto"
    redaction_key: str = ""  # HMAC key for placeholder consistency; empty: generated once in data_dir

    incident_quiet_period_s: float = Field(default=300.0, ge=0)
    incident_group_window_s: float = Field(default=3600.0, ge=0)
    # Labels whose values make an alert's incident group; "service" means label service, else job;
    # "alertname" the alert's name.
    incident_group_by: str = Field(default="service,alertname", pattern=r"^[A-Za-z_][\w]*(,[A-Za-z_][\w]*)*$")
    incident_reopen_window_s: float = Field(default=900.0, ge=0)  # a re-fire this soon after close reopens
    # Alertmanager re-sends a firing alert at least every repeat_interval (its default: 4 h); set this to yours.
    # An Alertmanager/Grafana alert not re-sent for alert_stale_after_repeats such intervals (silenced, or its
    # source gone: no resolve will ever come) is marked stale, and stops holding its incident open. 0: never.
    alert_repeat_interval_s: float = Field(default=14_400.0, gt=0)
    alert_stale_after_repeats: float = Field(default=3.0, ge=0)
    # Correlation: an alert with no open incident of its own joins an open incident whose latest alert started
    # at most this long before it, when they share evidence (a label value below, or a dependency). 0: off.
    incident_correlation_window_s: float = Field(default=900.0, ge=0)
    # Labels whose equal values are shared evidence (same cluster, same region…); comma-separated.
    incident_correlation_labels: str = Field(default="cluster", pattern=r"^([A-Za-z_][\w]*(,[A-Za-z_][\w]*)*)?$")
    # Service dependencies, JSON: {"checkout": ["payments", "orders-db"]}; either direction is shared evidence.
    incident_dependencies: dict[str, list[str]] = {}
    # Analysis: changes this long before an incident's first signal are trigger candidates.
    analysis_trigger_lookback_s: float = Field(default=3600.0, ge=0)
    # Timeline drafts hold at most this many lines (key events first); the full list stays exportable.
    timeline_max_lines: int = Field(default=40, ge=10, le=500)
    # Retention (consumers/retention.py, run by the consumers role every retention_interval_s): log lines no
    # incident holds, by their own timestamp (and log scopes' placeholders no line within that window used), and
    # outbox rows produced this long ago. 0 keeps them forever.
    retention_unattached_logs_days: float = Field(default=7.0, ge=0)
    retention_outbox_sent_days: float = Field(default=1.0, ge=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)
    retention_batch_rows: int = Field(default=10_000, ge=100)  # rows per delete transaction (short locks)
    # Put the customer's real name back into an approved ticket reply as it is published to ticket-replies.
    redaction_restore_names: bool = True
    log_level: str = "INFO"

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return v if v.endswith("/") else v + "/"

    @field_validator("slack_approvers", "slack_approvers_postmortem", "slack_approvers_timeline",
                     "slack_approvers_ticket_reply")
    @classmethod
    def _approvers(cls, v: str) -> str:
        bad = [i for i in (x.strip() for x in v.split(",")) if i and (i[0] not in "UWS" or not i.isalnum())]
        if bad:
            raise ValueError(f"must be comma-separated Slack user ids (U…, W…) or user group ids (S…), "
                             f"not {', '.join(bad)}")
        return v

    @field_validator("slack_incident_responders")
    @classmethod
    def _responders(cls, v: str) -> str:
        return cls._approvers(v)

    @field_validator("slack_stakeholder_channel")
    @classmethod
    def _stakeholders(cls, v: str) -> str:
        return cls._channel(v) if v else v

    @field_validator("slack_channel_name")
    @classmethod
    def _channel_name(cls, v: str) -> str:
        try:
            v.format(id=1, service="s", title="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may use only {{id}}, {{service}} and {{title}} ({exc})") from None
        if "{id}" not in v:
            raise ValueError("must contain {id}: two incidents must never want one name")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, v: str) -> str:
        if v and not v.startswith("xapp-"):
            raise ValueError("must be an app-level token (xapp-…) with the connections:write scope")
        return v

    @field_validator("slack_incident_channel", "slack_support_channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if not v or v[0] not in "CGD":
            raise ValueError("must be a Slack channel id (starts with C, G or D), not a channel name")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v in BUILTIN_MODELS or Path(v).expanduser().exists() or v.startswith(("http://", "https://")):
            return v
        if re.fullmatch(r"[\w.-]+/[\w.-]+", v):  # a Hugging Face id, taken from the local cache only
            return v
        raise ValueError(f"must be one of {', '.join(BUILTIN_MODELS)}, a .gguf file, a local model directory, "
                         f"a Hugging Face id in the local cache or an OpenAI-compatible URL (not found: {v})")

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return v.upper()

    @model_validator(mode="after")
    def _db(self) -> Settings:
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql")):
            raise ValueError("OPSDRAFT_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        return self

    @property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Plain postgresql:// means psycopg2 to SQLAlchemy; we ship psycopg 3.
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'opsdraft.db').resolve()}"

    @property
    def approvers(self) -> set[str]:
        return {u.strip() for u in self.slack_approvers.split(",") if u.strip()}

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"


    def redaction_key_bytes(self) -> bytes:
        if self.redaction_key:
            return self.redaction_key.encode()
        path = self.data_dir / "redaction.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    # Redaction configuration; lists and dicts are JSON in the environment, e.g.
    # OPSDRAFT_REDACTION_ALLOW='["checkout-svc", "*.prod.internal"]'.
    redaction_allow: list[str] = []  # values or case-insensitive globs never redacted (service catalogue, hosts)
    redaction_deny: list[str] = []  # extra regexes to redact: "REGEX" (<CUSTOM_n>) or "ENTITY=REGEX"
    redaction_entities: dict[str, list[str]] = {}  # per source (logs|alerts|tickets): entities to redact
    redaction_ner_logs: bool = False  # NER over logs too (slow; names in logs mostly come as user=/name=)

    @field_validator("redaction_deny")
    @classmethod
    def _deny(cls, v: list[str]) -> list[str]:
        import re

        for p in v:
            try:
                re.compile(p.split("=", 1)[1] if re.match(r"[A-Z][A-Z_]*=", p) else p)
            except re.error as exc:
                raise ValueError(f"bad regex {p!r}: {exc}") from None
        return v

    @field_validator("redaction_entities")
    @classmethod
    def _entities(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        from redaction.engine import ENTITIES

        for source, names in v.items():
            if source not in ("logs", "alerts", "tickets"):
                raise ValueError(f"unknown source {source!r} (logs, alerts, tickets)")
            if bad := set(names) - set(ENTITIES):
                raise ValueError(f"unknown entities {sorted(bad)} for {source} (choose from {', '.join(ENTITIES)})")
        return v

    # ---------------------------------------------------------------- summarizer: model runtime and retrieval
    # Read here once and passed to summarizer.* as parameters; the summarizer never reads os.environ itself.
    # Prompt-lookup decoding of an in-process model: tokens proposed per check, 0 for off, "auto" for the
    # format's default (3 for int4 where checking 4 tokens costs little more than decoding one, else off).
    model_prompt_lookup: str = "auto"
    # Seconds a draft's generation may take. Unset: 120 s per call to a model server (after which the draft is
    # made without the model) and 600 s of in-process generation (after which the text so far is kept). One
    # setting for both, as it always was: an OPSDRAFT_MODEL_TIMEOUT_S set for either backend keeps working.
    model_timeout_s: float | None = Field(default=None, gt=0)
    model_api_key: str = ""  # sent as a bearer token to an OpenAI-compatible model server; empty: none sent
    model_server_model: str = Field(default="default", min_length=1)  # for a server URL without "#name"
    # Weights of an in-process model: empty for bfloat16 on a GPU and int4 on a CPU; else bfloat16 (bf16),
    # float32 (fp32), float16 (fp16), int4 (CPU only) or int8 (CPU only).
    llm_dtype: str = ""
    # OpenMP threads per FAISS search: searches come one query at a time, where more threads only add jitter.
    faiss_threads: int = Field(default=1, ge=1, le=1024)
    model_nice: int = Field(default=10, ge=0, le=19, description=(
        "How much a process running an in-process model lowers its CPU priority (Unix nice, added once, when "
        "the model loads; 0: unchanged). Decoding keeps every core busy, so at equal priority the bot's acks "
        "waited for CPU behind it (bench/slack: p99 0.4-0.5 s on 2 cores); lowered, the model still uses idle "
        "cores but yields them to the other roles at once. In a process that runs other roles too, they are "
        "lowered with it (relative to other programs only)."))
    # A Markdown file with $summary-style fields replacing the built-in postmortem layout
    # (summarizer/prompts.py, POSTMORTEM_TEMPLATE lists the fields); empty: the built-in one.
    postmortem_template: Path | None = None

    @field_validator("model_prompt_lookup", mode="before")
    @classmethod
    def _prompt_lookup(cls, v: object) -> str:
        value = str(v).strip().lower() or "auto"
        if value != "auto" and not value.isdigit():
            raise ValueError(f"use a number of tokens, 0 (off) or auto, not {v!r}")
        return value

    @field_validator("llm_dtype", mode="before")
    @classmethod
    def _llm_dtype(cls, v: object) -> str:
        value = str(v).strip()
        if value not in ("", "bfloat16", "bf16", "float32", "fp32", "float16", "fp16", "int4", "int8"):
            raise ValueError(f"use bfloat16, float32, float16, int4 (CPU) or int8 (CPU), not {value!r}")
        return value

    @field_validator("postmortem_template", mode="before")
    @classmethod
    def _template(cls, v: object) -> object:
        if v is None or not str(v).strip():
            return None  # empty, as in OPSDRAFT_POSTMORTEM_TEMPLATE=, means the built-in template
        path = Path(str(v).strip()).expanduser()
        if not path.is_file():
            raise ValueError(f"must be a Markdown file with $summary-style fields (not found: {path})")
        return path


def load_settings(**overrides) -> Settings:
    """Build settings, turning pydantic's errors into one message that names each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "OPSDRAFT_" + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
