"""Change events (deploys, config changes, feature flags, infra actions) as one shape, ChangeEvent: the usual
trigger of an incident, and (rollback, restart, failover, renew, scale) the usual end of one.

Bodies accepted on the changes topic and POST /webhooks/changes (`detect_and_parse` picks the parser):
- GitHub `deployment_status` and `deployment` webhooks (event name in the X-GitHub-Event header, a Kafka header on
  the topic): service = the repository's name (or `deployment.payload.service`), version = the ref when it is a tag,
  else the short sha. States pending/queued/waiting/inactive, and other events (ping, push...), are None.
- Argo CD notifications, whose body is a template we recommend (Go text/template with Sprig; a field the app lacks
  renders "<no value>", read as empty). In argocd-notifications-cm:

    service.webhook.opsdraft: |
      url: https://opsdraft.example.internal/webhooks/changes
      headers: [{name: Content-Type, value: application/json}]
    template.opsdraft-change: |
      webhook:
        opsdraft:
          method: POST
          body: |
            {"app": "{{.app.metadata.name}}", "revision": "{{.app.status.sync.revision}}",
             "images": {{toJson .app.status.summary.images}}, "syncStatus": "{{.app.status.sync.status}}",
             "healthStatus": "{{.app.status.health.status}}", "operationPhase": "{{.app.status.operationState.phase}}",
             "startedAt": "{{.app.status.operationState.startedAt}}",
             "finishedAt": "{{.app.status.operationState.finishedAt}}",
             "initiatedBy": "{{.app.status.operationState.operation.initiatedBy.username}}",
             "automated": "{{.app.status.operationState.operation.initiatedBy.automated}}",
             "message": {{toJson .app.status.operationState.message}},
             "destNamespace": "{{.app.spec.destination.namespace}}", "environment": "production"}
  then add `opsdraft-change` to the `send:` list of the triggers on-deployed, on-sync-succeeded, on-sync-failed and
  on-health-degraded, and subscribe apps: notifications.argoproj.io/subscribe.<trigger>.opsdraft: "" annotations.
  Version = the first image's tag, else the short revision; phase Succeeded is success (failure when the app is
  Degraded), Failed/Error failure, Running in_progress.
- The generic change JSON: {"service", "version", "kind", "action"?, "actor", "at", "description", "id",
  "environment", "status"?}; unknown fields are refused (a misspelt field is a mistake to report, not to drop).

Change-like log lines become ChangeEvents too, by the rules in consumers/change_rules.py."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from consumers.sources.base import aware, problems
from opsdraft.bus import InvalidMessage

Kind = Literal["deploy", "config", "feature-flag", "infra"]
Action = Literal["deploy", "rollback", "rollout", "config-reload", "feature-flag", "failover", "restart", "scale",
                 "certificate-renew", "disable", "other"]
_STATUS_ALIASES = {**dict.fromkeys(("success", "succeeded", "successful", "ok", "complete", "completed", "done"),
                                    "success"), **dict.fromkeys(("failure", "failed", "error", "errored"), "failure"),
                   **dict.fromkeys(("in_progress", "in-progress", "running", "started"), "in_progress")}


class InvalidChange(InvalidMessage, ValueError):
    """A body that is no change we can read; says what is missing or wrong."""


class ChangeEvent(BaseModel):
    """One change, whatever its sender. `at` is UTC (naive means UTC); `id` is the sender's, for idempotency."""

    model_config = ConfigDict(extra="ignore")
    service: str = Field(min_length=1, max_length=200)
    version: str = Field(default="", max_length=200)
    kind: Kind
    action: Action
    actor: str = Field(default="", max_length=200)
    at: datetime
    description: str = Field(default="", max_length=2000)
    source: Literal["generic", "github", "argocd", "log"]
    id: str = Field(default="", max_length=200)
    environment: str = Field(default="", max_length=200)
    status: Literal["", "success", "failure", "in_progress"] = ""

    @field_validator("at")
    @classmethod
    def _tz(cls, v: datetime) -> datetime:
        return aware(v)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> Any:
        return _STATUS_ALIASES.get(v.strip().lower(), v) if isinstance(v, str) else v


def _event(model: type[ChangeEvent] = ChangeEvent, /, **fields: Any) -> ChangeEvent:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise InvalidChange(f"invalid {fields.get('source', 'generic')} change: {problems(exc)}") from None


def _text(v: Any, limit: int = 200) -> str:
    """A field as text: absent, null and Go's "<no value>" are empty."""
    if v is None or isinstance(v, dict | list):
        return ""
    v = str(v).strip()
    return "" if v in ("<no value>", "null", "None") else v[:limit]


def _json(v: str) -> Any:
    try:
        return json.loads(v)
    except ValueError:
        return v


# --- generic ----------------------------------------------------------------------------------------------------

_DEFAULT_ACTION = {"deploy": "deploy", "config": "config-reload", "feature-flag": "feature-flag", "infra": "other"}


class GenericChange(ChangeEvent):
    """The generic change JSON we document: ChangeEvent's fields, action optional (by kind), source implied."""

    model_config = ConfigDict(extra="forbid")  # ours: a misspelt field is a mistake to report, not to drop
    action: Action | None = None  # type: ignore[assignment]
    source: Literal["generic"] = "generic"
    id: str | int = ""  # type: ignore[assignment]


def parse_generic(data: Any) -> ChangeEvent:
    if not isinstance(data, dict):
        raise InvalidChange("a change must be a JSON object")
    g = _event(GenericChange, **data)
    return _event(**g.model_dump(exclude={"action", "id"}), action=g.action or _DEFAULT_ACTION[g.kind],
                  id=str(g.id)[:200])


# --- GitHub -----------------------------------------------------------------------------------------------------

_GITHUB_STATES = {"success": "success", "failure": "failure", "error": "failure", "in_progress": "in_progress"}
_TAG = re.compile(r"v?\d+(?:\.\d+)+(?:[-+][0-9A-Za-z.\-]+)?")
_ROLLBACK_WORDS = re.compile(r"\b(?:rollback|roll(?:ed|ing)?[\s-]back|revert(?:ed|ing)?)\b", re.I)


def _short(rev: str) -> str:
    return rev[:7] if re.fullmatch(r"[0-9a-f]{40}", rev) else rev[:200]


def _login(user: Any) -> str:
    return _text(user.get("login")) if isinstance(user, dict) else ""


def parse_github(event_name: str, data: Any) -> ChangeEvent | None:
    """A `deployment_status` or `deployment` webhook; None for other events and for states that change nothing."""
    event = (event_name or "").strip().lower()
    if event not in ("deployment", "deployment_status"):
        return None
    if not isinstance(data, dict):
        raise InvalidChange(f"GitHub {event} event must be a JSON object")
    needed = ("deployment_status",) * (event == "deployment_status") + ("deployment", "repository")
    if missing := [k for k in needed if not isinstance(data.get(k), dict)]:
        raise InvalidChange(f"GitHub {event} event without {', '.join(missing)}")
    dep, repo = data["deployment"], data["repository"]
    st = data.get("deployment_status") if event == "deployment_status" else {}
    state = _text(st.get("state")).lower()
    if st and not state:
        raise InvalidChange("GitHub deployment_status event without deployment_status.state")
    if st and state not in _GITHUB_STATES:  # pending, queued, waiting, inactive, and states GitHub may add
        return None
    at = _text(st.get("created_at")) or _text(st.get("updated_at")) or _text(dep.get("created_at"))
    if not at:
        raise InvalidChange(f"GitHub {event} event without {'deployment_status.' if st else 'deployment.'}created_at")
    payload = dep.get("payload")
    payload = _json(payload) if isinstance(payload, str) else payload  # the REST API allows a JSON string
    payload = payload if isinstance(payload, dict) else {}
    service = _text(payload.get("service")) or _text(repo.get("name"))
    ref, sha = _text(dep.get("ref")), _text(dep.get("sha"))
    tag = ref.removeprefix("refs/tags/")
    version = _text(payload.get("version")) or (
        tag if ref.startswith("refs/tags/") or _TAG.fullmatch(tag) else _short(sha or ref))
    task, notes = _text(dep.get("task")), [_text(dep.get("description"), 1000), _text(st.get("description"), 1000)]
    rollback = _ROLLBACK_WORDS.search(" ".join([task, *notes])) is not None
    actors = [_login(st.get("creator")), _login(dep.get("creator")), _login(data.get("sender"))]
    actor = next((a for a in actors if a and not a.endswith("[bot]")), next((a for a in actors if a), ""))
    what = f"{_text(repo.get('full_name')) or service} {ref}" + (f"@{sha[:7]}" if sha and sha != ref else "")
    ext = f"github:{_text(repo.get('full_name'))}:deployment:{_text(dep.get('id'))}" + (
        f":status:{_text(st.get('id'))}" if st else "")
    return _event(service=service, version=version, kind="deploy", action="rollback" if rollback else "deploy",
                  actor=actor, at=at, description=" - ".join(x for x in [what, *notes] if x)[:2000], source="github",
                  id=ext[:200], environment=_text(st.get("environment")) or _text(dep.get("environment")),
                  status=_GITHUB_STATES.get(state, ""))


# --- Argo CD ----------------------------------------------------------------------------------------------------

_ARGO_PHASES = {"succeeded": "success", "failed": "failure", "error": "failure", "running": "in_progress"}


def image_tag(ref: str) -> str:
    """The tag of an image reference (registry:5000/shop/app:1.2.3 -> 1.2.3), else its short digest, else ""."""
    name, _, digest = ref.strip().partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1][:200]
    return digest[:19] if digest else ""  # sha256: and 12 hex digits


def _images(v: Any) -> list[str]:
    v = _json(v.strip()) if isinstance(v, str) and v.strip().startswith("[") else v
    if isinstance(v, str):  # Go's own rendering of a list: [repo/a:1 repo/b:2]
        v = v.strip("[]").replace(",", " ").split()
    return [str(i) for i in v if i] if isinstance(v, list) else []


def parse_argocd(data: Any) -> ChangeEvent:
    """The body of the Argo CD notification template in this module's docstring."""
    if not isinstance(data, dict):
        raise InvalidChange("Argo CD notification must be a JSON object")
    app = _text(data.get("app"))
    revision = _text(next(iter(r), "") if isinstance(r := data.get("revision"), list) else r)  # or multi-source
    at = _text(data.get("finishedAt")) or _text(data.get("startedAt"))
    if missing := [k for k, v in (("app", app), ("finishedAt or startedAt", at)) if not v]:
        raise InvalidChange(f"Argo CD notification without {', '.join(missing)}")
    phase, health, sync = (_text(data.get(k)) for k in ("operationPhase", "healthStatus", "syncStatus"))
    status = _ARGO_PHASES.get(phase.lower()) or {"healthy": "success", "degraded": "failure"}.get(health.lower(), "")
    status = "failure" if health.lower() == "degraded" and status == "success" else status
    tags = [t for t in map(image_tag, _images(data.get("images"))) if t]
    automated = str(data.get("automated")).lower() == "true"  # rendered "true", or JSON true
    actor = _text(data.get("initiatedBy")) or ("argocd (automated)" if automated else "")
    parts = [f"Argo CD {app}", f"sync {sync}" if sync else "", f"health {health}" if health else "",
             f"operation {phase}" if phase else "", f"revision {revision}" if revision else "",
             _text(data.get("message"), 1000)]
    return _event(service=app, version=tags[0] if tags else _short(revision), kind="deploy", action="deploy",
                  actor=actor, at=at, description=", ".join(p for p in parts if p)[:2000], source="argocd",
                  id=f"argocd:{app}:{revision}:{at}:{phase}:{health}"[:200], status=status,
                  environment=_text(data.get("environment")) or _text(data.get("destNamespace")))


# --- which sender ----------------------------------------------------------------------------------------------

def detect_and_parse(data: Any, headers: dict[str, str] | None = None) -> ChangeEvent | None:
    """GitHub (by its X-GitHub-Event header, or a body with deployment and repository), Argo CD (app with revision
    or operationPhase), else the generic change JSON. None for a sender's event that is no change."""
    event = next((v for k, v in (headers or {}).items() if k.lower() == "x-github-event"), "")
    if event:
        return parse_github(event, data)
    if not isinstance(data, dict):
        raise InvalidChange(f"a change must be a JSON object, not {type(data).__name__}")
    if isinstance(data.get("deployment"), dict) and isinstance(data.get("repository"), dict):
        return parse_github("deployment_status" if "deployment_status" in data else "deployment", data)
    if "app" in data and ("revision" in data or "operationPhase" in data):
        return parse_argocd(data)
    if "service" in data or "kind" in data:
        return parse_generic(data)
    raise InvalidChange(
        "not a change: no X-GitHub-Event header nor deployment+repository (GitHub), no app+revision/operationPhase "
        f"(Argo CD), and no service/kind/at (generic change JSON); got fields {sorted(data)[:10]}")
