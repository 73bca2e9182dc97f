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

Log lines: `change_from_log` tries RULES in order (first match wins), each only when the lower-cased line holds one
of its keywords: most lines cost one lower() and a few `in` tests. `describe_rules()` lists them for the README."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from consumers.sources.base import aware, problems
from opsdraft.bus import InvalidMessage

Kind = Literal["deploy", "config", "feature-flag", "infra"]
Action = Literal["deploy", "rollback", "rollout", "config-reload", "feature-flag", "failover", "restart", "scale",
                 "certificate-renew", "other"]
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


# --- log lines --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """A change-like log line: the regex runs only when the lower-cased line contains one of `keywords` (and one
    of `context`, when given). Its group `version` (else the line after the match) gives the version when
    `versioned`; its group `target`, the service the line names (deployed checkout 1.2.3, deployment/checkout)."""

    name: str
    action: Action
    kind: Kind
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    example: str
    versioned: bool = True
    context: tuple[str, ...] = ()


_GAP = r"(?:[^.;\n]|\.(?=\w)){0,60}?"  # up to 60 characters within one sentence (a dot inside 1.2.3 is not an end)
_NOT = r"(?<!not )(?<!not yet )(?<!never )"
_K8S = r"(?:deployments?|statefulsets?|daemonsets?)(?:\.apps)?"
_V = r"(?P<version>[\w.\-/:@+]*\d[\w.\-/:@+]*)"
_T = r"(?P<target>[\w.\-]+)"


def _rule(name: str, action: Action, kind: Kind, keywords: str, pattern: str, example: str, **kw: Any) -> Rule:
    return Rule(name, action, kind, tuple(keywords.split("|")), re.compile(pattern, re.I), example, **kw)


RULES: list[Rule] = [
    _rule("rollout-restart", "restart", "infra", "restart",
          rf"\brollout\s+restart\b(?:\s+{_K8S}[/\s]{_T})?", "kubectl rollout restart deployment/checkout"),
    _rule("k8s-restarted", "restart", "infra", "restart", rf"\b{_K8S}/{_T}\s+restarted\b",
          "deployment.apps/checkout restarted"),
    _rule("waf-ruleset", "config-reload", "config", "waf|firewall|ruleset",
          rf"\b(?:waf|firewall)\b{_GAP}\b(?:rules?|ruleset|polic(?:y|ies)|config(?:uration)?)\b{_GAP}{_NOT}\b"
          rf"(?:deployed|pushed|rolled\s+out|applied|published|activated|updated)\b|\bruleset\b{_GAP}{_NOT}"
          r"\b(?:deployed|pushed|rolled\s+out|applied|published|activated)\b",
          "waf ruleset 2024-11-20.1 pushed to edge"),
    _rule("feature-flag", "feature-flag", "feature-flag", "flag|toggle|experiment",
          r"\b(?:feature[\s_-]?(?:flag|toggle)|flag|toggle|experiment)s?\s+['\"\[]?[\w.:<>\-]+['\"\]]?\s+"
          r"(?:(?:was|is|has\s+been|got)\s+)?(?:enabled|disabled|toggled|turned\s+(?:on|off)|switched\s+(?:on|off)|"
          r"flipped|rolled\s+out|activated|deactivated|set\s+to|changed|updated|archived|killed)\b",
          "feature flag new-checkout enabled for 50%", versioned=False),
    _rule("flag-verb-first", "feature-flag", "feature-flag", "flag|toggle",
          r"\b(?:enabled|disabled|toggled|flipped|activated|deactivated)\s+(?:the\s+)?(?:feature[\s_-]?)?"
          r"(?:flag|toggle)\b", "enabled feature flag dark-mode for beta users", versioned=False),
    _rule("rollback-to", "rollback", "deploy", "rolled back|rolling back|roll back|rollback",
          rf"\b(?:roll(?:ed|ing)?\s+back|rollback)\b{_GAP}\bto\s+(?!savepoint\b)(?:(?:the\s+)?(?:previous|last\s+good|"
          rf"stable)\s+(?:version|release|revision|build)|(?:(?:version|release|revision|build|image|tag)\s+)?{_V})",
          "rolled back to v2.3.0"),
    _rule("helm-rollback", "rollback", "deploy", "helm rollback",
          rf"\bhelm\s+rollback\s+{_T}\s+(?P<version>\d+)\b", "helm rollback checkout 12"),
    _rule("rollback-of", "rollback", "deploy", "rolled back|rolling back|roll back|rollback",
          r"\b(?:rollback|roll(?:ed|ing)?\s+back)\s+(?:(?:of|for)\s+)?(?:the\s+)?(?:(?:last|bad|previous|failed)\s+)?"
          r"(?:deploy(?:ment)?|release|rollout|version|build|canary)\b|\b(?:deploy(?:ment)?|release|canary|"
          r"auto(?:matic|mated)?)[\s-]+rollback\b", "rollback of deployment checkout started", versioned=False),
    _rule("revert", "rollback", "deploy", "revert",
          r"\brevert(?:ing|ed)?\s+(?:(?:the|last|bad|previous)\s+)*(?:deploy(?:ment)?|release|rollout|build)\b|"
          r"\brevert(?:ing|ed)?\s+to\s+(?:(?:version|release|build)\s+)?(?P<version>v?\d[\w.\-+]*)",
          "reverting deploy"),
    _rule("certificate", "certificate-renew", "infra", "cert",
          rf"\bcert(?:ificate)?s?\b{_GAP}{_NOT}\b(?:renewed|re-?issued|issued|rotated|replaced|installed|deployed)\b"
          r"(?!\s+by\b)|\b(?:renewed|re-?issued|issued|rotated|installed)\s+(?:(?:a|the|new|tls|ssl|x509|serving)\s+)*"
          r"cert(?:ificate)?s?\b|\bcert(?:ificate)?\s+renewal\s+(?:succeeded|complete[d]?|done|failed)\b",
          "certificate renewed, notAfter=2027-02-18T00:00:00Z", versioned=False),
    _rule("config-reloaded", "config-reload", "config", "config|reload",
          rf"\b(?:config(?:uration)?|configmap|rules|routes)\b{_GAP}{_NOT}\breloaded\b|\breload(?:ing|ed)?\s+"
          r"(?:of\s+)?(?:the\s+)?config(?:uration)?\b|\bcompleted\s+loading\s+of\s+configuration\b|\bconfig(?:uration)?"
          r"\s+reload\s+(?:succeeded|successful|complete[d]?|triggered|done|failed|requested)\b", "config reloaded"),
    _rule("config-applied", "config-reload", "config", "config",
          rf"\b(?:config(?:uration)?|configmap|config\s+map)\b{_GAP}{_NOT}\b(?:applied|updated|changed|pushed|"
          r"published|activated|rolled\s+out|deployed)\b|\b(?:applied|pushed|deployed|published|rolled\s+out)\s+"
          r"(?:(?:new|the)\s+)?config(?:uration)?\b", "configuration version 42 applied"),
    _rule("image-updated", "deploy", "deploy", "image",
          rf"\bimages?\b{_GAP}\b(?:updated|changed|set|bumped|upgraded)\s+(?:from\s+\S+\s+)?to\s+"
          r"(?P<version>[\w.\-/:@]+\w)", "image updated to registry.example.com/shop/checkout:1.2.3"),
    _rule("release", "deploy", "deploy", "release",
          r"\brelease\s+(?P<version>v?\d[\w.\-+]*)\s+(?:(?:has|was|is)\s+)?(?:started|starting|complete[d]?|finished|"
          r"succeeded|successful|failed|deployed|rolled\s+out|live|done|published|shipped|in\s+progress)\b",
          "release 2.3.1 started"),
    _rule("deploy", "deploy", "deploy", "deploy|rolling out",
          r"(?<!for )(?<!the )(?<!already )(?<!currently )(?<!previously )(?<!newly )(?:\bdeploy(?:ed|ing)\b|"
          r"\b(?:failed|unable)\s+to\s+deploy\b|\brolling\s+out(?=\s+(?:version|release|build|v?\d)))"
          r"(?:\s+(?P<target>[a-z][\w.\-]{0,99})(?=\s+(?:version\s|release\s|build\s|v\d|\d|[0-9a-f]{7,40}\b)))?",
          "deployed checkout v1.2.3 to production"),
    _rule("k8s-rolled-out", "rollout", "deploy", "rolled out",
          rf"\b{_K8S}[\s/]+\"?{_T}\"?\s+successfully\s+rolled\s+out\b",
          'deployment "checkout" successfully rolled out'),
    _rule("rollout", "rollout", "deploy", "rollout|canary|rolling update|rolled out",
          rf"\brollout\b{_GAP}\b(?:started|resumed|paused|promoted|aborted|complete[d]?|progressing|step\s+\d+|in\s+"
          rf"progress|succeeded|failed|finished)\b|\bcanary\b{_GAP}\b(?:weight|step|promoted|promotion|started|aborted|"
          r"analysis\s+(?:passed|failed|succeeded|complete[d]?))\b|\brolling\s+update\s+(?:of|started|complete[d]?|"
          r"finished)\b|\brolled\s+out\s+to\s+\d+\s*%",
          "canary step 3/8: traffic weight set to 40%"),
    _rule("failover", "failover", "infra", "failover|failed over|failing over|fail over|switch|promot",
          r"\b(?:fail(?:ed|ing)?|switch(?:ed|ing)?)[\s-]?over\s+(?:to|from|of|complete[d]?|started|initiated|triggered|"
          r"succeeded|successful|finished|done|in\s+progress|event)\b|\b(?:automatic|manual|initiating|performing|"
          r"starting|triggered|triggering)\s+(?:a\s+)?(?:fail|switch)[\s-]?over\b|\bpromot(?:ed|ing)\s+"
          r"(?!canary|rollout|release|build|version)(?:[\w.\-<>]+\s+){0,3}?to\s+(?:be\s+)?(?:the\s+)?(?:new\s+)?"
          r"(?:primary|master|leader|writer|active)\b", "promoted db-2 to primary", versioned=False),
    _rule("leader-elected", "failover", "infra", "leader|elected|election|lease",
          r"\b(?:leader\s+elected|elected\s+(?:as\s+)?(?:the\s+)?(?:new\s+)?leader|became\s+(?:the\s+)?(?:new\s+)?"
          r"(?:leader|primary|master)|(?:won|lost)\s+(?:the\s+)?(?:leader(?:ship)?\s+)?election|successfully\s+"
          r"acquired\s+lease)\b", "raft: 8e9e05c52164694d elected leader 8e9e05c52164694d at term 2", versioned=False),
    _rule("restart", "restart", "infra", "restart",
          r"(?<!back-off )(?<!backoff )\brestart(?:ed|ing)\s+(?:\d+\s+|all\s+|the\s+)?(?:(?!failed\b)[\w.\-]+\s+)?"
          r"(?:pods?|containers?|instances?|replicas?|nodes?|workers|services?|process(?:es)?|deployments?|brokers?|"
          r"servers?|apps?|applications?)\b|\b(?:services?|pods?|containers?|instances?|deployments?|apps?|"
          r"applications?|servers?|process(?:es)?|workers|daemons?|brokers?|nodes?)\s+(?:[\w.\-]+\s+)?"
          r"(?:(?:was|were|has\s+been|have\s+been|successfully)\s+)?restarted\b|\b(?:rolling|graceful|scheduled|planned|"
          r"manual)\s+restart\b(?!\s+(?:window|policy|count|limit|delay))", "restarted 12 pods",
          versioned=False),
    _rule("scale", "scale", "infra", "scal",
          rf"\bscal(?:ed|ing)(?:\s+(?:up|down|out|in))?(?:\s+(?:deployment|statefulset|service)[\s/]+"
          rf"{_T})?{_GAP}\bto\s+\d+\b", "scaled deployment checkout from 20 to 60 replicas",
          versioned=False, context=("replica", "deployment", "statefulset", "pod", "node", "instance", "worker",
                                    "task", "capacity", "desired", "shard", "partition", "container")),
    _rule("autoscaler", "scale", "infra", "scal|hpa|asg|karpenter|new size",
          rf"\b(?:auto-?scal\w*|hpa|asg|karpenter)\b{_GAP}\b(?:added|removed|launched|terminated|provisioned|scaled|"
          rf"set|increased|decreased)\b{_GAP}\d+|\bnew\s+size:\s*\d+|\bscale[\s-](?:up|down|out|in)\b{_GAP}\b"
          r"(?:triggered|started|complete[d]?|finished|succeeded|size\s+to\s+\d+|\d+\s+(?:nodes?|instances?|replicas?|"
          r"pods?))", "autoscaler added 10 nodes to pool default", versioned=False),
]

_ALL = {k for r in RULES for k in r.keywords}
_KEYWORDS = tuple(sorted(k for k in _ALL if not any(o != k and o in k for o in _ALL)))  # "scal" covers "autoscal"
_FAIL_IN = re.compile(r"\b(?:failed|failure|errored|aborted|unsuccessful|timed\s+out|unable\s+to|could\s+not|"
                      r"cannot)\b(?!\s+over)", re.I)
_FAIL_AFTER = re.compile(r"[\s:,;.\-]*(?:(?:has|have|was|were|is|had)\s+)?(?:failed|failure|errored|error|aborted|"
                         r"unsuccessful|timed\s+out|did\s+not\s+complete|rejected)\b", re.I)
_FAIL_BEFORE = re.compile(r"\b(?:fail(?:ed|ure)?|errors?|unable|could\s+not|couldn't|cannot|can't)\s+(?:(?:to|during|"
                          r"while|in|on|of|when)\s+)?(?:\w+\s+)?$", re.I)
_DONE = re.compile(r"\b(?:complete[d]?|succeeded|successful(?:ly)?|finished|done)\b", re.I)
_ONGOING = re.compile(r"\b(?:start(?:ed|ing)|initiat(?:ed|ing)|trigger(?:ed|ing)|in\s+progress|progressing|begun|"
                      r"beginning|deploying|rolling|restarting|scaling|reverting|promoting|failing\s+over|switching\s+"
                      r"over|reloading|rotating|renewing|waiting)\b", re.I)
_VERSIONS = [re.compile(p, re.I) for p in (
    r"(?<![\w.\-/])[\w.\-]+(?::\d+)?(?:/[\w.\-]+)+:(?P<v>\w[\w.\-]{0,127})",  # registry/repo/image:tag
    r"\b(?:version|release|build|revision|rev|tag|ruleset)\s*[#:=]?\s*(?P<v>v?\d[\w.\-+]*|[0-9a-f]{7,40}\b)",
    r"(?<![\w.\-])(?P<v>v\d+(?:\.\d+)*(?:-[0-9a-z][\w.]*)?)\b",
    r"(?<![\w.\-])(?P<v>\d+\.\d+\.\d+(?:-[0-9a-z][\w.]*)?)(?![.\d])",
    r"\b(?P<v>(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40})\b",
)]
_NOT_A_SERVICE = {"version", "release", "build", "revision", "image", "commit", "the", "a", "new", "to", "service",
                  "app", "application", "deployment", "config", "all", "successfully", "tag", "artifact", "chart"}
_ENV_KEYS = ("environment", "env", "deployment.environment", "deployment.environment.name")
_ACTOR_KEYS = ("actor", "user", "user.name", "username", "initiator", "triggered_by")


def version_of(text: str) -> str:
    """The first version a line names: an image tag, 'version/build/release N', v1.2, 1.2.3, or a commit sha."""
    for pattern in _VERSIONS:
        if m := pattern.search(text):
            v = m["v"].rstrip(".-")
            return _short(v.lower()) if re.fullmatch(r"[0-9a-fA-F]{40}", v) else v[:200]
    return ""


def _status(level: str, text: str, m: re.Match[str]) -> str:
    span, after = m.group(0), text[m.end():m.end() + 60]
    if _FAIL_IN.search(span) or _FAIL_AFTER.match(after) or _FAIL_BEFORE.search(text[max(0, m.start() - 40):m.start()]):
        return "failure"
    if _DONE.search(span) or _DONE.search(after):
        return "success"
    if _ONGOING.search(span) or _ONGOING.search(after):
        return "in_progress"
    return "failure" if level.upper() in ("ERROR", "CRITICAL", "FATAL") else "success"


def _attr(attributes: dict, keys: tuple[str, ...]) -> str:
    return next((_text(attributes[k]) for k in keys if attributes.get(k) not in (None, "")), "")


def change_from_log(service: str, level: str, message: str, at: datetime, attributes: dict) -> ChangeEvent | None:
    """The change a log line reports (first matching rule), or None. `message` is already redacted."""
    text = message[:2000]  # change lines are short: a stack trace past this is no change
    low = text.lower()
    if not any(k in low for k in _KEYWORDS):
        return None
    for rule in RULES:
        if not any(k in low for k in rule.keywords) or rule.context and not any(c in low for c in rule.context):
            continue
        if (m := rule.pattern.search(text)) is None:
            continue
        groups = m.groupdict()
        version = ""
        if rule.versioned:
            v = groups.get("version") or ""
            version = (image_tag(v) or v if ":" in v or "@" in v else v) or version_of(text[m.start():])
        target = groups.get("target") or ""
        if not re.fullmatch(r"[a-z][\w.\-]{1,99}", target, re.I) or target.lower() in _NOT_A_SERVICE:
            target = ""
        attributes = attributes if isinstance(attributes, dict) else {}
        return ChangeEvent(service=target or service, version=version[:200], kind=rule.kind, action=rule.action,
                           actor=_attr(attributes, _ACTOR_KEYS), at=at, description=text, source="log",
                           environment=_attr(attributes, _ENV_KEYS), status=_status(level, text, m))
    return None


def describe_rules() -> list[tuple[str, str, str]]:
    """(name, action, example) per rule, in the order they are tried: the README's table."""
    return [(r.name, r.action, r.example) for r in RULES]

