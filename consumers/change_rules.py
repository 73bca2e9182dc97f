"""Change-like log lines: a small registry of documented rules (deploy, rollout, rollback, config reload, feature
flag, kill switch, failover, restart, scale, certificate renewal) that turn a log line into a ChangeEvent.

Each rule's regex runs only when the lower-cased line holds one of its keywords: most lines cost one lower() and a
few `in` tests. `describe_rules()` lists them for the README."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumers.changes import Action, ChangeEvent, Kind, _short, _text, image_tag

# --- rules --------------------------------------------------------------------------------------------------

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
          r"\b(?:deployed|pushed|rolled\s+out|applied|published|activated)\b|\b(?:rolling\s+out|pushing|deploying)\s+"
          r"(?:the\s+)?(?:waf\s+|firewall\s+)?(?:rules?|ruleset)\b",
          "waf ruleset 2024-11-20.1 pushed to edge"),
    _rule("kill-switch", "disable", "config", "kill switch|kill-switch|killswitch|disabled",
          rf"\bkill[\s-]?switch\b{_GAP}\b(?:engaged|activated|enabled|flipped|pulled)\b|\b(?:rules?|features?|"
          r"modules?|protection|integration)\s+(?:[\w.\-]+\s+){0,3}(?:were\s+|was\s+)?disabled\s+"
          r"(?:on|for|across|globally|everywhere)\b", "global kill switch engaged: waf managed rules disabled",
          versioned=False),
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
          rf"stable)\s+(?:version|release|revision|build)|(?:(?:version|release|revision|build|image|tag)\s+)?{_V}|"
          rf"{_T}\s+v?\d[\w.\-]*)", "rolled back to v2.3.0"),
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
          r"\bdeploy\s+(?:started|complete[d]?|finished|succeeded|triggered):?|"
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
          r"manual)\s+restart\b(?!\s+(?:window|policy|count|limit|delay))|\bfull\s+restart\b|\brestart\s+(?:complete[d]?|"
          r"initiated|finished)\b", "restarted 12 pods",
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
_ANY_KEYWORD = re.compile("|".join(map(re.escape, _KEYWORDS)))  # one search: cheaper than 38 `in` tests per line
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
    if not _ANY_KEYWORD.search(low):
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

