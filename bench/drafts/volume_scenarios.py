"""Realistic-volume incident scenarios with known right answers, for benchmarking opsdraft end to end.

Each scenario follows the facts of a well-known public postmortem, retold in our own words with fictional
service names, and produces thousands of messages in arrival order on three topics:

- ``alerts``: Alertmanager webhook bodies (version 4) with group-interval repeats and the resolve notification;
- ``logs``: the JSON log line consumers/payloads.py accepts (timestamp, service, level, message, attributes;
  the host travels as ``attributes.host`` because LogLine forbids extra fields);
- ``changes``: a generic change record {service, version, kind, actor, at, description, id}.

Alongside, ``truth`` says what a correct draft must contain. Standard library only, deterministic (seeded).

    python3 bench/drafts/volume_scenarios.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ZERO_TIME = "0001-01-01T00:00:00Z"
EXTERNAL_URL = "http://alertmanager.prod:9093"
RECEIVER = "opsdraft"


def iso(dt: datetime, ms: bool = True) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- building blocks ------------------------------------------------------------------------------------

class Builder:
    """Collects one scenario's messages (any order) and its key events; `finish` sorts and adds noise."""

    def __init__(self, seed: int, t0: datetime, cluster: str):
        self.rng, self.t0, self.cluster = random.Random(seed), t0, cluster
        self._out: list[tuple[datetime, int, str, dict]] = []
        self.alerts: dict[str, dict] = {}  # alertname -> service, first start, last end
        self.key_events: list[dict] = []
        self.first_error: datetime | None = None

    # time, ids, hosts
    def t(self, minutes: float) -> datetime:
        return self.t0 + timedelta(milliseconds=round(minutes * 60_000))

    def rid(self) -> str:
        return f"{self.rng.getrandbits(48):012x}"

    def pods(self, prefix: str, n: int) -> list[str]:
        rs = f"{self.rng.getrandbits(16):04x}"
        return [f"{prefix}-{rs}-{i}" for i in range(1, n + 1)]

    def pick(self, seq):
        return seq[self.rng.randrange(len(seq))]

    # messages
    def _add(self, when: datetime, topic: str, value: dict) -> None:
        self._out.append((when, len(self._out), topic, value))

    def log(self, when: datetime, service: str, level: str, message: str, host: str, **attrs: str) -> datetime:
        self._add(when, "logs", {"timestamp": iso(when), "service": service, "level": level, "message": message,
                                 "attributes": {"host": host, **{k: str(v) for k, v in attrs.items()}}})
        return when

    def error(self, when: datetime, service: str, message: str, host: str, **attrs: str) -> datetime:
        """The first incident error: also marks where the impact starts (with the first alert)."""
        self.first_error = when if self.first_error is None else min(self.first_error, when)
        return self.log(when, service, "ERROR", message, host, **attrs)

    def change(self, when: datetime, service: str, version: str, kind: str, actor: str, description: str,
               cid: str) -> datetime:
        self._add(when, "changes", {"service": service, "version": version, "kind": kind, "actor": actor,
                                    "at": iso(when, ms=False), "description": description, "id": cid})
        return when

    def spread(self, start: float, end: float, n: int, emit, peak: float | None = None) -> None:
        """Call emit(when) n times between minutes start and end, uniform or peaking at `peak`."""
        for _ in range(n):
            m = self.rng.uniform(start, end) if peak is None else self.rng.triangular(start, end, peak)
            emit(self.t(m))

    def key(self, when: datetime, kind: str, *match: str) -> None:
        self.key_events.append({"at": iso(when, ms=False), "kind": kind, "match": list(match)})

    # alerts
    def alert(self, name: str, service: str, severity: str, summary: str, expr: str,
              instances: list[tuple[str, float, float, str]], interval_min: float = 5, **labels: str) -> None:
        """One alert rule's lifecycle as Alertmanager notifies it: grouped by (alertname, service), the first
        notification after group_wait, then one every interval while any alert fires (the repeats), a resolved
        alert reported once in the next notification, the last one with status "resolved".
        instances: (instance, start minute, end minute, description)."""
        alerts, cluster = [], labels.pop("cluster", self.cluster)
        for inst, start, end, description in instances:
            lab = {"alertname": name, "service": service, "severity": severity, "instance": inst,
                   "cluster": cluster, "job": service, **labels}
            fp = hashlib.sha256(json.dumps(lab, sort_keys=True).encode()).hexdigest()[:16]
            alerts.append({"labels": lab, "fp": fp, "start": self.t(start), "end": self.t(end),
                           "annotations": {"summary": summary, "description": description,
                                           "runbook_url": f"https://runbooks.internal/{name.lower()}"}})
        first, last = min(a["start"] for a in alerts), max(a["end"] for a in alerts)
        self.alerts[name] = {"service": service, "start": first, "end": last, "severity": severity}
        url = f"http://prometheus.{self.cluster}:9090/graph?g0.expr={quote(expr)}&g0.tab=1"
        when, reported = first + timedelta(seconds=30), set()
        while len(reported) < len(alerts):
            batch = [a for a in alerts if a["start"] <= when and a["fp"] not in reported]
            if batch:
                self._add(when, "alerts", self._notification(name, service, batch, when, url))
                reported |= {a["fp"] for a in batch if a["end"] <= when}
            when += timedelta(minutes=interval_min)

    def _notification(self, name: str, service: str, batch: list[dict], when: datetime, url: str) -> dict:
        items = []
        for a in batch:
            resolved = a["end"] <= when
            items.append({"status": "resolved" if resolved else "firing", "labels": a["labels"],
                          "annotations": a["annotations"], "startsAt": iso(a["start"]),
                          "endsAt": iso(a["end"]) if resolved else ZERO_TIME, "generatorURL": url,
                          "fingerprint": a["fp"]})
        return {
            "version": "4", "groupKey": f'{{}}/{{}}:{{alertname="{name}", service="{service}"}}',
            "truncatedAlerts": 0,
            "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
            "receiver": RECEIVER, "groupLabels": {"alertname": name, "service": service},
            "commonLabels": _common([i["labels"] for i in items]),
            "commonAnnotations": _common([i["annotations"] for i in items]),
            "externalURL": EXTERNAL_URL, "alerts": items,
        }

    # noise and the result
    def noise(self, n: int, start: float, end: float, services: dict[str, list[str]],
              quiet: dict[str, tuple[float, float]] | None = None) -> None:
        """n lines of healthy-service chatter; a service is silent in its `quiet` window (it logs errors then)."""
        names, quiet = list(services), quiet or {}
        for _ in range(n):
            m = self.rng.uniform(start, end)
            svc = self.pick(names)
            while svc in quiet and quiet[svc][0] <= m <= quiet[svc][1]:
                svc = self.pick(names)
            level, message, attrs = _noise_line(self.rng, svc)
            self.log(self.t(m), svc, level, message, self.pick(services[svc]), **attrs)

    def pii(self, n: int, start: float, end: float, service: str, hosts: list[str]) -> None:
        """A few lines with personal data, as real logs have (opsdraft redacts them)."""
        for _ in range(n):
            level, message = self.pick(PII_LINES)
            self.log(self.t(self.rng.uniform(start, end)), service, level, message, self.pick(hosts),
                     request_id=self.rid())

    def finish(self, *, name: str, based_on: str, target: int, minutes: float, services: dict[str, list[str]],
               quiet: dict[str, tuple[float, float]], trigger: dict, resolution: dict) -> dict:
        missing = target - len(self._out)
        if missing < target // 5:
            raise AssertionError(f"{name}: incident lines leave too little room for noise ({missing})")
        self.noise(missing, 0, minutes, services, quiet)
        self._out.sort(key=lambda x: (x[0], x[1]))
        starts = [a["start"] for a in self.alerts.values()] + [self.first_error]
        truth = {
            "real_incidents": 1,
            "services_alerting": sorted({a["service"] for a in self.alerts.values()}),
            "alerts": {n: {"service": a["service"], "severity": a["severity"], "first_start": iso(a["start"], False),
                           "last_end": iso(a["end"], False)} for n, a in sorted(self.alerts.items())},
            "trigger": trigger, "resolution": resolution,
            "impact_start": iso(min(s for s in starts if s), ms=False),
            "impact_end": iso(max(a["end"] for a in self.alerts.values()), ms=False),
            "key_events": sorted(self.key_events, key=lambda e: e["at"]),
        }
        return {"name": name, "based_on": based_on, "t0": iso(self.t0, ms=False),
                "messages": [{"topic": topic, "value": value} for _, _, topic, value in self._out], "truth": truth}


def _common(dicts: list[dict]) -> dict:
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def trigger(kind: str, service: str, at: datetime, source: str, *match: str) -> dict:
    return {"kind": kind, "service": service, "at": iso(at, ms=False), "match": list(match), "source": source}


def resolution(action: str, at: datetime, *match: str) -> dict:
    return {"action": action, "at": iso(at, ms=False), "match": list(match)}


# --- healthy-service chatter ----------------------------------------------------------------------------

ROUTES = ["/api/v2/items", "/api/v2/orders/{id}", "/api/v2/session", "/healthz", "/api/v2/search", "/api/v2/me",
          "/api/v2/feed", "/static/app.js", "/api/v2/notifications", "/api/v2/upload"]
DEPS = ["redis-main", "kafka-broker-2", "users-db", "search-cluster", "feature-flags", "geo-lookup"]


def _noise_line(rng: random.Random, svc: str) -> tuple[str, str, dict]:
    r = rng.random()
    if r < 0.50:
        route = rng.choice(ROUTES).replace("{id}", str(rng.randint(10_000, 99_999)))
        ms = max(1, int(rng.lognormvariate(3.0, 0.7)))
        return "INFO", f"{rng.choice(['GET', 'GET', 'POST', 'PUT'])} {route} 200 served in {ms}ms", {
            "request_id": f"{rng.getrandbits(48):012x}", "route": route.split("?")[0]}
    if r < 0.62:
        return "DEBUG", (f"cache hit ratio {rng.uniform(0.86, 0.99):.3f} over last 60s "
                         f"(keys={rng.randint(20_000, 90_000)}, evictions={rng.randint(0, 40)})"), {}
    if r < 0.72:
        return "DEBUG", (f"GC pause {rng.randint(2, 45)}ms ({rng.choice(['young', 'young', 'mixed'])}), "
                         f"heap {rng.randint(300, 1500)}MB/2048MB"), {}
    if r < 0.80:
        return "DEBUG", "health check ok: db=ok cache=ok queue=ok", {}
    if r < 0.87:
        return "INFO", (f"db pool stats in_use={rng.randint(2, 14)} idle={rng.randint(6, 30)} waiting=0 "
                        f"max=50"), {}
    if r < 0.93:
        return "INFO", (f"consumer lag topic=events partition={rng.randint(0, 11)} "
                        f"lag={rng.randint(0, 80)}"), {}
    if r < 0.96:
        return "WARNING", (f"slow query took {rng.randint(1000, 2600)}ms: SELECT id, state FROM jobs WHERE "
                           f"owner_id = $1 ORDER BY updated_at DESC LIMIT 50"), {}
    if r < 0.985:
        return "WARNING", (f"retrying call to {rng.choice(DEPS)} after connection reset by peer "
                           f"(attempt 2/3)"), {}
    return "WARNING", (f"deprecated endpoint /api/v1/items called by client sdk-js/{rng.randint(1, 2)}."
                       f"{rng.randint(0, 9)}.{rng.randint(0, 9)}"), {}


PII_LINES = [
    ("INFO", "password reset link sent to user=jane.doe@example.com"),
    ("INFO", 'login ok user=maria.gonzalez@example.org name="Maria Gonzalez" ip=203.0.113.24'),
    ("WARNING", 'payment declined for customer "John Smith" <john.smith@example.net> card_last4=4242'),
    ("INFO", "export requested by user=priya.natarajan@example.com (Priya Natarajan), 3 files"),
    ("WARNING", "account locked after 5 failed logins user=tom.becker@example.de phone=+49 30 1234567"),
]


# --- the scenarios ---------------------------------------------------------------------------------------

def waf_regex_cpu() -> dict:
    b = Builder(2019_0702, datetime(2026, 7, 2, 13, 20, tzinfo=UTC), "prod-eu-1")
    edge, waf_ctl = b.pods("edge", 12), b.pods("waf-deployer", 2)
    services = {"edge-proxy": edge, "waf-engine": edge, "waf-deployer": waf_ctl, "shop-web": b.pods("shop-web", 6),
                "auth-api": b.pods("auth-api", 4), "api-gateway": b.pods("api-gw", 4)}
    b.log(b.t(19.2), "waf-deployer", "INFO", "ruleset wafrules-0702.3 validated: 412 rules, 0 errors, "
          "1 rule added (id 100742, xss-inline-script)", waf_ctl[0])
    tr = b.log(b.t(22.0), "waf-deployer", "INFO", "rolling out waf ruleset wafrules-0702.3 to all edge nodes "
               "(global push, no staged rollout)", waf_ctl[0], ruleset="wafrules-0702.3")
    b.key(tr, "change", "wafrules-0702.3")
    for i, h in enumerate(edge):
        b.log(b.t(22.05 + i * 0.03), "waf-engine", "INFO", f"waf ruleset wafrules-0702.3 loaded in "
              f"{b.rng.randint(60, 120)}ms", h)
    err = b.error(b.t(22.45), "edge-proxy", "upstream worker pool saturated, returned 502 to client "
                  f"request_id={b.rid()} cpu=99.6%", edge[3])
    b.key(err, "error_signature", "502")
    b.spread(22.5, 47.3, 4900, lambda w: b.log(w, "edge-proxy", "ERROR", "upstream worker pool saturated, returned "
             f"502 to client request_id={b.rid()} cpu={b.rng.uniform(97, 100):.1f}%", b.pick(edge)), peak=30)
    b.spread(22.4, 47.1, 2500, lambda w: b.log(w, "waf-engine", "WARNING", "rule 100742 exceeded its 50ms "
             f"evaluation budget (took {b.rng.randint(800, 4000)}ms) request_id={b.rid()}", b.pick(edge)), peak=28)
    b.spread(22.6, 47.2, 600, lambda w: b.log(w, "edge-proxy", "ERROR", "watchdog: event loop blocked for "
             f"{b.rng.uniform(1.2, 6):.1f}s, dropping {b.rng.randint(20, 400)} queued connections", b.pick(edge)))
    b.spread(23, 47, 250, lambda w: b.log(w, "shop-web", "WARNING", f"origin sees {b.rng.randint(40, 85)}% fewer "
             "requests than the same minute last week", b.pick(services["shop-web"])))
    b.log(b.t(34.5), "waf-deployer", "WARNING", "rollback of wafrules-0702.3 requested by "
          "oncall=alex.moreau@example.com, queued behind global kill review", waf_ctl[1])
    fix = b.log(b.t(47.0), "waf-engine", "WARNING", "global kill switch engaged: waf managed rules disabled on all "
                "edge nodes (waf.managed.enabled=false)", waf_ctl[0])
    b.key(fix, "recovery", "waf", "disabled")
    b.spread(47.4, 50, 60, lambda w: b.log(w, "edge-proxy", "INFO", f"cpu back to {b.rng.randint(25, 45)}%, "
             "502 rate at baseline", b.pick(edge)))
    cpu = [(f"{h}:9100", 23.0 + b.rng.uniform(0, 1.5), 47.8 + b.rng.uniform(0, 1.5),
            f"CPU at {b.rng.uniform(98, 100):.1f}% on {h} for 1m") for h in edge]
    b.alert("EdgeCPUSaturated", "edge-proxy", "critical", "Edge CPU saturated",
            'avg by (instance) (rate(node_cpu_seconds_total{mode!="idle",job="edge"}[1m])) > 0.95', cpu)
    b.alert("Edge5xxRateHigh", "edge-proxy", "critical", "Edge returning 5xx to clients",
            'sum(rate(edge_responses_total{code=~"5.."}[2m])) / sum(rate(edge_responses_total[2m])) > 0.05',
            [("edge-lb-ams:443", 23.5, 48.2, "76% of responses are 5xx"),
             ("edge-lb-fra:443", 23.7, 48.6, "81% of responses are 5xx")], interval_min=4)
    b.alert("WafRuleLatencyHigh", "waf-engine", "warning", "WAF rule evaluation slow",
            "histogram_quantile(0.99, rate(waf_rule_eval_seconds_bucket[5m])) > 0.05",
            [("waf-engine:9300", 24.0, 47.9, "p99 rule evaluation 2.9s")])
    b.alert("SyntheticCheckFailing", "shop-web", "critical", "Public storefront probe failing",
            'probe_success{job="blackbox",target="https://shop.example.test"} == 0',
            [("probe-ams", 25.0, 49.6, "HTTP 502 from shop.example.test"),
             ("probe-nyc", 25.3, 49.9, "HTTP 502 from shop.example.test")])
    _alert_keys(b, "EdgeCPUSaturated", "SyntheticCheckFailing")
    re_on = b.log(b.t(92.0), "waf-deployer", "INFO", "rolling out waf ruleset wafrules-0702.4 (rule 100742 "
                  "removed); managed rules re-enabled", waf_ctl[0], ruleset="wafrules-0702.4")
    b.key(re_on, "change", "wafrules-0702.4")
    b.pii(6, 0, 100, "auth-api", services["auth-api"])
    return b.finish(
        name="waf-regex-cpu", target=14_000, minutes=100, services=services,
        based_on=("Cloudflare, July 2019: a new WAF managed rule whose regular expression backtracked "
                  "catastrophically was pushed to every edge machine at once; edge CPU pinned at 100% and "
                  "proxied traffic failed with 502s until the managed WAF was switched off globally."),
        quiet={"edge-proxy": (22.4, 47.4), "waf-engine": (22.4, 47.4)},
        trigger=trigger("config", "waf-engine", tr, "log", "wafrules-0702.3"),
        resolution=resolution("config", fix, "waf", "disabled"))


def expired_certificate() -> dict:
    b = Builder(2020_0203, datetime(2026, 2, 3, 13, 30, tzinfo=UTC), "prod-us-1")
    idgw, pki = b.pods("identity-gw", 6), b.pods("pki-agent", 1)
    chat, presence, bff = b.pods("chat-api", 8), b.pods("presence", 4), b.pods("mobile-bff", 4)
    services = {"identity-gw": idgw, "pki-agent": pki, "chat-api": chat, "presence-svc": presence,
                "mobile-bff": bff, "media-svc": b.pods("media", 3)}
    for m in (2.0, 8.0, 14.0):
        b.log(b.t(m), "pki-agent", "WARNING", f"certificate idgw-mtls (CN=identity-gw.internal) expires in "
              f"0d 0h {20 - int(m)}m; last renewal attempt failed: order still pending", pki[0])
    tr = b.log(b.t(20.0), "pki-agent", "WARNING", "certificate idgw-mtls serial 5A:3C:91:0E has expired "
               "(notAfter=2026-02-03T13:50:00Z); identity-gw is still serving it", pki[0])
    b.key(tr, "change", "certificate", "expire")
    err = b.error(b.t(20.1), "chat-api", "auth token validation failed: x509: certificate has expired or is not "
                  "yet valid (upstream identity-gw.internal:8443) request_id=" + b.rid(), chat[0])
    b.key(err, "error_signature", "x509")
    b.spread(20.1, 53.5, 1500, lambda w: b.log(w, "chat-api", "ERROR", "auth token validation failed: x509: "
             "certificate has expired or is not yet valid (upstream identity-gw.internal:8443) "
             f"request_id={b.rid()}", b.pick(chat)), peak=24)
    b.spread(20.3, 53.6, 700, lambda w: b.log(w, "presence-svc", "ERROR", "tls handshake with "
             "identity-gw.internal:8443 failed: remote certificate expired, "
             f"{b.rng.randint(3, 90)} sessions dropped", b.pick(presence)))
    b.spread(20.5, 53.8, 500, lambda w: b.log(w, "mobile-bff", "ERROR", f"login failed session={b.rid()}: "
             "401 from identity-gw (token exchange refused)", b.pick(bff)))
    for who in ("lena.fischer@example.com", "omar.haddad@example.org"):
        b.log(b.t(b.rng.uniform(22, 40)), "mobile-bff", "ERROR", f"login failed for user={who}: 401 from "
              "identity-gw (token exchange refused)", b.pick(bff))
    b.log(b.t(38.0), "pki-agent", "ERROR", "renewal of idgw-mtls failed: issuer intermediate ca-int-2 rejected "
          "order (profile mismatch)", pki[0])
    fix = b.log(b.t(52.0), "pki-agent", "INFO", "certificate idgw-mtls renewed, serial 7D:0B:22:E4, "
                "notAfter=2026-05-04T14:22:00Z", pki[0])
    b.key(fix, "recovery", "certificate", "renew")
    b.log(b.t(53.5), "identity-gw", "INFO", "reloaded TLS material on 6 pods (rolling restart complete)", idgw[0])
    b.alert("CertificateExpired", "identity-gw", "critical", "TLS certificate expired",
            'probe_ssl_earliest_cert_expiry{target="identity-gw.internal:8443"} - time() < 0',
            [("identity-gw.internal:8443", 20.5, 53.9, "certificate idgw-mtls expired 0 days ago")])
    b.alert("AuthFailureRateHigh", "chat-api", "critical", "Token validation failing",
            'sum by (instance) (rate(auth_validation_failures_total[2m])) > 5',
            [(f"{h}:8080", 21.5 + i * 0.2, 54.8 + i * 0.3, f"{b.rng.randint(40, 95)} failures/s on {h}")
             for i, h in enumerate(chat[:3])])
    b.alert("TLSHandshakeErrors", "presence-svc", "warning", "TLS handshakes to identity-gw failing",
            'rate(tls_handshake_errors_total{peer="identity-gw"}[5m]) > 1',
            [(f"{h}:8080", 22.0 + i * 0.4, 55.0 + i * 0.2, f"handshake errors on {h}") for i, h in
             enumerate(presence)], interval_min=4)
    b.alert("LoginErrorBudgetBurn", "mobile-bff", "critical", "Login SLO burning fast",
            'slo:login_errors:burnrate1h > 14.4', [("mobile-bff", 24.0, 57.0, "burn rate 38x")])
    _alert_keys(b, "CertificateExpired", "AuthFailureRateHigh", resolved=("CertificateExpired",
                                                                           "LoginErrorBudgetBurn"))
    b.pii(5, 0, 80, "media-svc", services["media-svc"])
    return b.finish(
        name="expired-certificate", target=6_000, minutes=80, services=services,
        based_on=("Microsoft Teams, February 2020: a certificate used in the authentication path was allowed "
                  "to expire, and clients could not sign in until a renewed certificate was put in place."),
        quiet={"chat-api": (20, 54), "presence-svc": (20, 54), "mobile-bff": (20, 54)},
        trigger=trigger("infra", "identity-gw", tr, "log", "certificate", "expire"),
        resolution=resolution("renew", fix, "certificate", "renew"))


def partition_failover() -> dict:
    b = Builder(2018_1021, datetime(2026, 10, 21, 22, 27, tzinfo=UTC), "prod-us-east-1")
    repo, hooks, net = b.pods("repo-api", 16), b.pods("webhooks", 6), b.pods("netmon", 1)
    orch, db = b.pods("orchestrator", 3), ["meta-db-east-1", "meta-db-east-2", "meta-db-west-3", "meta-db-west-4"]
    services = {"repo-api": repo, "webhooks-worker": hooks, "net-core": net, "db-orchestrator": orch,
                "meta-db": db, "pages-builder": b.pods("pages", 4), "notifications-svc": b.pods("notify", 4),
                "search-api": b.pods("search", 6)}
    tr = b.change(b.t(24.5), "net-core", "", "infra", "netops:a.okafor", "MW-4471: replace failing 100G optic "
                  "on link hub-east-2 <-> dc-east-a", "CHG-20441")
    b.key(tr, "change", "hub-east-2")
    err = b.error(b.t(25.1), "net-core", "link hub-east-2 <-> dc-east-a down (BFD timeout), 0/4 lanes up", net[0])
    b.key(err, "error_signature", "hub-east-2", "down")
    b.log(b.t(25.82), "net-core", "INFO", "link hub-east-2 <-> dc-east-a up after 43s", net[0])
    b.log(b.t(25.4), "db-orchestrator", "WARNING", "dead primary suspected: meta-db-east-1 unreachable from 3/5 "
          "raft members", orch[0])
    fo = b.log(b.t(25.7), "db-orchestrator", "WARNING", "promoted meta-db-west-3 to primary for cluster meta-db "
               "(recovery id 8812)", orch[0])
    b.key(fo, "change", "meta-db-west-3", "primary")
    b.change(b.t(26.2), "notifications-svc", "v2.8.0", "deploy", "deploy-bot", "Deploy notifications-svc v2.8.0 "
             "(digest batching)", "DEP-99172")  # unrelated: ranking must not pick it
    b.spread(26, 88, 6000, lambda w: b.log(w, "repo-api", "ERROR", "query timeout after 3000ms calling meta-db "
             f"(primary=meta-db-west-3) request_id={b.rid()}", b.pick(repo)), peak=34)
    b.spread(26, 90, 2500, lambda w: b.log(w, "repo-api", "WARNING", f"write to meta-db took "
             f"{b.rng.randint(60, 140)}ms (cross-region round trip)", b.pick(repo)))
    b.spread(27, 95, 1500, lambda w: b.log(w, "webhooks-worker", "WARNING", "delivery delayed: queue depth "
             f"{b.rng.randint(20_000, 90_000)}, oldest job {b.rng.randint(5, 60)}m", b.pick(hooks)))
    b.spread(27, 88, 300, lambda w: b.log(w, "meta-db", "ERROR", "replication stopped on meta-db-east-1: "
             f"{b.rng.randint(900, 1000)} transactions not present on new primary (errant GTIDs)", db[0]))
    b.log(b.t(40.0), "webhooks-worker", "WARNING", "delivery paused by operator to limit writes "
          "(oncall=sam.reyes@example.com)", hooks[0])
    fix = b.log(b.t(86.5), "db-orchestrator", "INFO", "graceful takeover: promoted meta-db-east-1 to primary for "
                "cluster meta-db (replicas caught up, errant transactions reconciled)", orch[1])
    b.key(fix, "recovery", "meta-db-east-1", "primary")
    b.log(b.t(89.0), "webhooks-worker", "INFO", "delivery resumed, draining backlog", hooks[0])
    b.alert("LinkDown", "net-core", "critical", "Backbone link down", 'bfd_session_up{link="hub-east-2"} == 0',
            [("hub-east-2", 25.2, 25.9, "link hub-east-2 <-> dc-east-a down")])
    b.alert("MySQLReplicationBroken", "meta-db", "critical", "Replication stopped",
            'mysql_slave_status_slave_sql_running == 0',
            [(f"{d}:9104", 27.0 + i * 0.5, 87.5 + i * 0.5, f"SQL thread stopped on {d}")
             for i, d in enumerate(db[:2])])
    b.alert("APILatencyHigh", "repo-api", "critical", "API p99 latency above 2s",
            'histogram_quantile(0.99, sum by (le, instance) (rate(http_request_duration_seconds_bucket[5m]))) > 2',
            [(f"{h}:8080", 27.5 + i * 0.3, 88.5 + i * 0.4, f"p99 {b.rng.uniform(3, 9):.1f}s on {h}")
             for i, h in enumerate(repo[:4])])
    b.alert("JobQueueBacklog", "webhooks-worker", "warning", "Webhook queue backlog growing",
            "sum(webhook_queue_depth) > 10000", [("webhooks", 29.0, 99.0, "backlog above 10k jobs")],
            interval_min=4)
    _alert_keys(b, "LinkDown", "APILatencyHigh", resolved=("APILatencyHigh", "JobQueueBacklog"))
    b.pii(8, 0, 120, "notifications-svc", services["notifications-svc"])
    return b.finish(
        name="partition-failover", target=20_000, minutes=120, services=services,
        based_on=("GitHub, October 2018: swapping failing optical gear cut the east-coast hub off from the "
                  "main data centre for under a minute; the database orchestrator promoted primaries on the "
                  "west coast, writes crossed the continent, and the two sides' data diverged."),
        quiet={"repo-api": (26, 89), "webhooks-worker": (27, 95)},
        trigger=trigger("infra", "net-core", tr, "change", "hub-east-2"),
        resolution=resolution("failover", fix, "meta-db-east-1", "primary"))


def customer_config_latent_bug() -> dict:
    b = Builder(2021_0608, datetime(2026, 6, 8, 9, 32, tzinfo=UTC), "prod-global")
    pops = [f"cache-{p}-{b.rng.randint(1, 9)}" for p in ("ams", "fra", "lhr", "cdg", "iad", "sjc", "nrt", "syd")]
    cfg, shield = b.pods("cdn-config-api", 3), b.pods("origin-shield", 4)
    services = {"cdn-edge": pops, "cdn-config-api": cfg, "origin-shield": shield, "billing-usage": b.pods("usage", 2),
                "purge-api": b.pods("purge", 3), "public-status": b.pods("status", 2)}
    b.log(b.t(1.0), "cdn-edge", "DEBUG", "running build v23.4.1 (deployed 2026-05-12)", pops[0])
    tr = b.change(b.t(15.0), "cdn-edge", "cfg-88213@17", "config", "customer:tenant-4471 (self-service API)",
                  "tenant-4471 activated service config cfg-88213 version 17 (new request-header rewrite rule)",
                  "cfgpush-6Q2K9")
    b.key(tr, "change", "cfg-88213")
    b.log(b.t(15.3), "cdn-config-api", "INFO", "propagating cfg-88213 v17 to 58 POPs", cfg[0])
    err = b.log(b.t(15.7), "cdn-edge", "CRITICAL", "worker crashed: panic: index out of range in header-rewrite "
                "compile (service cfg-88213 v17); restarting (crash 1)", pops[1])
    b.first_error = err
    b.key(err, "error_signature", "panic")
    b.spread(15.8, 55.5, 600, lambda w: b.log(w, "cdn-edge", "CRITICAL", "worker crashed: panic: index out of "
             f"range in header-rewrite compile (service cfg-88213 v17); restarting (crash {b.rng.randint(2, 90)})",
             b.pick(pops)))
    b.spread(15.8, 58, 3000, lambda w: b.log(w, "cdn-edge", "ERROR", "503 returned: no healthy worker "
             f"request_id={b.rid()} service={b.rng.choice(['cfg-10442', 'cfg-23310', 'cfg-51877', 'cfg-88213'])}",
             b.pick(pops)), peak=20)
    b.spread(16, 58, 300, lambda w: b.log(w, "origin-shield", "WARNING", f"inbound requests down "
             f"{b.rng.randint(70, 90)}% vs 1h ago", b.pick(shield)))
    b.log(b.t(30.0), "cdn-config-api", "INFO", "engineering bridge opened; suspect a config-triggered crash, "
          "bisecting recent config activations", cfg[1])
    fix = b.log(b.t(55.0), "cdn-config-api", "WARNING", "config cfg-88213 version 17 disabled by operator; tenant "
                "rolled back to version 16", cfg[1])
    b.key(fix, "recovery", "cfg-88213", "disabl")
    b.spread(55.5, 60, 60, lambda w: b.log(w, "cdn-edge", "INFO", "worker healthy, serving traffic "
             f"(recovered after {b.rng.randint(30, 45)}m)", b.pick(pops)))
    b.alert("EdgeWorkerCrashLoop", "cdn-edge", "critical", "Edge workers crash-looping",
            'increase(edge_worker_restarts_total[5m]) > 3',
            [(f"{p}:9145", 16.3 + i * 0.1, 57.0 + b.rng.uniform(0, 1.5), f"{b.rng.randint(8, 40)} restarts in 5m on "
              f"{p}") for i, p in enumerate(pops)])
    b.alert("Edge5xxRatio", "cdn-edge", "critical", "Most edge responses are errors",
            'sum by (region) (rate(edge_responses_total{code=~"5.."}[2m])) / '
            'sum by (region) (rate(edge_responses_total[2m])) > 0.2',
            [(f"region-{r}", 16.5, 60.0 + i * 0.8, f"{b.rng.randint(70, 92)}% 5xx in {r}")
             for i, r in enumerate(("eu", "us", "apac"))], interval_min=4)
    b.alert("OriginTrafficDrop", "origin-shield", "warning", "Origin shield traffic dropped",
            "sum(rate(shield_requests_total[5m])) < 0.3 * sum(rate(shield_requests_total[5m] offset 1h))",
            [("origin-shield", 19.0, 61.0, "traffic at 18% of last hour")])
    b.alert("SyntheticCheckFailing", "public-status", "critical", "Customer-facing probe failing",
            'probe_success{job="blackbox"} == 0',
            [("probe-news-portal", 16.8, 63.8, "503 from news-portal.example.test"),
             ("probe-stream-shop", 17.0, 64.6, "503 from stream-shop.example.test")])
    _alert_keys(b, "EdgeWorkerCrashLoop", "Edge5xxRatio", resolved=("Edge5xxRatio", "SyntheticCheckFailing"))
    b.change(b.t(118.0), "cdn-edge", "v23.4.2", "deploy", "release-bot", "Deploy cdn-edge v23.4.2 to canary POP "
             "(fix header-rewrite compile panic)", "DEP-70731")
    b.pii(6, 0, 125, "billing-usage", services["billing-usage"])
    return b.finish(
        name="customer-config-latent-bug", target=9_000, minutes=125, services=services,
        based_on=("Fastly, June 2021: a bug shipped in a release weeks earlier lay dormant until one customer "
                  "pushed a perfectly valid configuration change, after which most of the edge returned errors "
                  "until that configuration was turned off."),
        quiet={"cdn-edge": (15.7, 58)},
        trigger=trigger("config", "cdn-edge", tr, "change", "cfg-88213"),
        resolution=resolution("config", fix, "cfg-88213", "disabl"))


def deploy_pool_exhaustion() -> dict:
    b = Builder(2021_0104, datetime(2026, 1, 12, 15, 0, tzinfo=UTC), "prod-eu-2")
    api, bouncer, gw = b.pods("messaging-api", 16), b.pods("chat-db-proxy", 2), b.pods("web-gw", 4)
    services = {"messaging-api": api, "chat-db-proxy": bouncer, "web-gateway": gw, "search-api": b.pods("search", 3),
                "auth-api": b.pods("auth", 3)}
    tr = b.log(b.t(15.0), "messaging-api", "INFO", "Deployed build messaging-api v4.2.0 (commit 9f3c2ab) to 16 pods "
               "by deploy-bot", api[0], version="v4.2.0")
    b.key(tr, "change", "v4.2.0")
    err = b.error(b.t(17.5), "messaging-api", "timeout acquiring connection from pool after 5000ms (pool=chat-db, "
                  f"in_use=50/50) request_id={b.rid()}", api[2])
    b.key(err, "error_signature", "pool")
    b.spread(17.6, 34.5, 900, lambda w: b.log(w, "messaging-api", "ERROR", "timeout acquiring connection from pool "
             f"after 5000ms (pool=chat-db, in_use=50/50) request_id={b.rid()}", b.pick(api)), peak=25)
    b.spread(18, 34.5, 250, lambda w: b.log(w, "chat-db-proxy", "ERROR", "no more connections allowed "
             f"(max_client_conn=2000), client {b.pick(api)} refused", b.pick(bouncer)))
    b.spread(18.5, 35, 250, lambda w: b.log(w, "web-gateway", "ERROR", "upstream timeout after 3000ms calling "
             f"messaging-api request_id={b.rid()}", b.pick(gw)))
    b.log(b.t(22.0), "messaging-api", "INFO", "hpa: scaled messaging-api from 16 to 32 replicas "
          "(cpu 91% > target 70%)", api[0])
    b.log(b.t(26.0), "messaging-api", "WARNING", "new pods messaging-api opening 40 connections each at startup; "
          "pool warm-up cannot complete", api[5])
    b.log(b.t(31.0), "messaging-api", "INFO", "rollback to v4.1.9 started by oncall=ana.silva@example.com", api[0])
    fix = b.log(b.t(33.5), "messaging-api", "INFO", "rollback to v4.1.9 complete (16/16 pods), hpa pinned at 16",
                api[0], version="v4.1.9")
    b.key(fix, "recovery", "rollback", "v4.1.9")
    b.alert("DBConnectionPoolExhausted", "messaging-api", "critical", "Connection pool exhausted",
            'max by (instance) (db_pool_in_use / db_pool_max) >= 1',
            [(f"{h}:8080", 18.0 + i * 0.3, 34.2 + i * 0.2, f"pool chat-db at 50/50 on {h}")
             for i, h in enumerate(api[:4])], interval_min=4)
    b.alert("PgBouncerClientLimit", "chat-db-proxy", "critical", "pgbouncer refusing clients",
            "pgbouncer_pools_client_waiting_connections > 100",
            [(f"{h}:9127", 18.6, 34.8, f"clients waiting on {h}") for h in bouncer], interval_min=4)
    b.alert("HighErrorRate", "messaging-api", "critical", "messaging-api 5xx above 5%",
            'sum(rate(http_requests_total{service="messaging-api",code=~"5.."}[2m])) / '
            'sum(rate(http_requests_total{service="messaging-api"}[2m])) > 0.05',
            [("messaging-api", 19.0, 35.5, "31% of requests fail")], interval_min=4)
    b.alert("APIErrorBudgetBurn", "web-gateway", "warning", "Gateway error budget burning",
            "slo:gateway_errors:burnrate1h > 6", [("web-gateway", 20.0, 37.0, "burn rate 12x")], interval_min=4)
    _alert_keys(b, "DBConnectionPoolExhausted", "HighErrorRate", resolved=("HighErrorRate", "APIErrorBudgetBurn"))
    b.pii(5, 0, 50, "auth-api", services["auth-api"])
    return b.finish(
        name="deploy-pool-exhaustion", target=3_000, minutes=50, services=services,
        based_on=("A composite in the spirit of Slack's January 2021 report (connection capacity saturated and "
                  "scaling out added load), recast as a deploy that makes every pod hold more database "
                  "connections; generic facts, not one report's."),
        quiet={"messaging-api": (17.5, 34), "web-gateway": (18.5, 35)},
        trigger=trigger("deploy", "messaging-api", tr, "log", "v4.2.0"),
        resolution=resolution("rollback", fix, "v4.1.9"))


def capacity_removal_typo() -> dict:
    b = Builder(2017_0228, datetime(2026, 3, 2, 17, 10, tzinfo=UTC), "prod-us-2")
    fe, idx, plc = b.pods("objstore-fe", 12), b.pods("objstore-index", 6), b.pods("objstore-placement", 4)
    img, status, cap = b.pods("image-service", 6), b.pods("status-page", 2), b.pods("capctl", 1)
    services = {"objstore-frontend": fe, "objstore-index": idx, "objstore-placement": plc, "image-service": img,
                "status-page": status, "objstore-billing": b.pods("objstore-billing", 3), "capctl": cap,
                "image-resizer": b.pods("resizer", 4)}
    b.change(b.t(5.0), "image-resizer", "v3.14.2", "deploy", "deploy-bot", "Deploy image-resizer v3.14.2 "
             "(webp quality tweak)", "DEP-55120")  # unrelated, twenty minutes before
    b.log(b.t(5.5), "image-resizer", "INFO", "Deployed build image-resizer v3.14.2 to 4 pods",
          services["image-resizer"][0])
    tr = b.change(b.t(27.0), "objstore-billing", "", "infra", "ops:d.lindqvist", "capctl remove --pool "
                  "objstore-billing --count 212 (runbook RB-212 step 4, billing slowness)", "CHG-31877")
    b.key(tr, "change", "capctl")
    b.log(b.t(27.08), "capctl", "WARNING", "removing 212 hosts: 48 from objstore-billing, 96 from objstore-index, "
          "68 from objstore-placement (pool spillover allowed)", cap[0])
    err = b.error(b.t(27.5), "objstore-index", "quorum lost: 41/137 index nodes available, refusing GET/LIST/PUT",
                  idx[0])
    b.key(err, "error_signature", "quorum")
    b.spread(27.6, 72.5, 3600, lambda w: b.log(w, "objstore-frontend", "ERROR", "503 ServiceUnavailable: index "
             f"lookup failed bucket=b-{b.rng.randint(1000, 9999)} request_id={b.rid()}", b.pick(fe)), peak=35)
    b.spread(72.5, 95.5, 500, lambda w: b.log(w, "objstore-frontend", "ERROR", "503 ServiceUnavailable on PUT: "
             f"no placement capacity bucket=b-{b.rng.randint(1000, 9999)} request_id={b.rid()}", b.pick(fe)))
    b.spread(27.6, 95.5, 500, lambda w: b.log(w, "objstore-placement", "ERROR", "cannot allocate new object: "
             "placement capacity 0 bytes", b.pick(plc)))
    b.spread(28, 96, 800, lambda w: b.log(w, "image-service", "ERROR", f"upload failed for asset {b.rid()}: "
             "objstore returned 503", b.pick(img)))
    b.spread(30, 72, 40, lambda w: b.log(w, "status-page", "ERROR", "failed to publish status update: asset "
             "upload to objstore returned 503", b.pick(status)))
    b.log(b.t(30.0), "objstore-index", "INFO", "full restart of objstore-index initiated (96 nodes) by "
          "oncall=kim.tanaka@example.com", idx[1])
    for i, m in enumerate(range(33, 72, 3)):
        b.log(b.t(m), "objstore-index", "INFO", f"index restart progress: {41 + i * 7}/137 nodes, metadata "
              f"safety check {min(99, 8 + i * 7)}%", idx[1])
    idx_done = b.log(b.t(72.0), "objstore-index", "INFO", "objstore-index restart complete: 137/137 nodes serving, "
                     "metadata checks passed", idx[1])
    b.key(idx_done, "recovery", "objstore-index", "restart")
    b.log(b.t(74.0), "objstore-placement", "INFO", "objstore-placement full restart initiated (68 nodes)", plc[0])
    fix = b.log(b.t(95.0), "objstore-placement", "INFO", "objstore-placement restart complete: PUT allocation "
                "restored", plc[0])
    b.key(fix, "recovery", "objstore-placement", "restart")
    b.alert("ObjstoreAPI5xxHigh", "objstore-frontend", "critical", "Object store API returning 5xx",
            'sum by (zone) (rate(objstore_requests_total{code=~"5.."}[2m])) / '
            'sum by (zone) (rate(objstore_requests_total[2m])) > 0.1',
            [(f"zone-{z}", 28.0 + i * 0.2, 95.8 + i * 0.3, f"{b.rng.randint(60, 95)}% 5xx in zone {z}")
             for i, z in enumerate("abc")])
    b.alert("IndexQuorumLost", "objstore-index", "critical", "Index subsystem below quorum",
            "objstore_index_nodes_available / objstore_index_nodes_total < 0.5",
            [("objstore-index", 28.2, 72.3, "41 of 137 index nodes available")])
    b.alert("PlacementCapacityZero", "objstore-placement", "critical", "No placement capacity",
            "objstore_placement_free_bytes == 0", [("objstore-placement", 28.4, 95.3, "0 bytes allocatable")])
    b.alert("UploadFailures", "image-service", "warning", "Image uploads failing",
            'rate(image_upload_failures_total[5m]) > 2',
            [(f"{h}:8080", 29.0 + i * 0.5, 96.0 + i * 0.2, f"uploads failing on {h}") for i, h in enumerate(img[:3])],
            interval_min=4)
    _alert_keys(b, "IndexQuorumLost", "ObjstoreAPI5xxHigh", resolved=("IndexQuorumLost", "ObjstoreAPI5xxHigh"))
    b.pii(7, 0, 115, "objstore-billing", services["objstore-billing"])
    return b.finish(
        name="capacity-removal-typo", target=11_000, minutes=115, services=services,
        based_on=("AWS S3 us-east-1, February 2017: an operator following a playbook mistyped an input to a "
                  "capacity-removal command, removed far more servers than meant, including the index and "
                  "placement subsystems, and both needed slow full restarts."),
        quiet={"objstore-frontend": (27.5, 96), "image-service": (28, 96), "objstore-placement": (27.5, 95.5)},
        trigger=trigger("infra", "objstore-billing", tr, "change", "capctl"),
        resolution=resolution("restart", fix, "objstore-placement", "restart"))


def _alert_keys(b: Builder, *firing: str, resolved: tuple[str, ...] = ()) -> None:
    """Key events for alerts: the named ones firing (first start) and resolving (last end)."""
    for name in firing:
        b.key(b.alerts[name]["start"], "alert_firing", name, "fir")
    for name in resolved or firing:
        b.key(b.alerts[name]["end"], "alert_resolved", name, "resolv")


SCENARIOS = [waf_regex_cpu, expired_certificate, partition_failover, customer_config_latent_bug,
             deploy_pool_exhaustion, capacity_removal_typo]


def all_scenarios() -> list[dict]:
    return [fn() for fn in SCENARIOS]


# --- scoring ---------------------------------------------------------------------------------------------

_HHMM = re.compile(r"(?<!\d)([01]?\d|2[0-3]):([0-5]\d)(?!\d)")


def _line_minute(line: str) -> int | None:
    """Minute of day of the first HH:MM on the line (for a range "HH:MM-HH:MM", its start)."""
    m = _HHMM.search(line)
    return int(m.group(1)) * 60 + int(m.group(2)) if m else None


def score_named(text: str, spec: dict) -> bool:
    low = text.lower()
    return all(s.lower() in low for s in spec["match"])


def score_timeline(lines: list[str], truth: dict, tz_minute_tolerance: int = 1) -> dict:
    """A key event is found when a line has all its match substrings and a time within the tolerance."""
    found, missing = 0, []
    for ev in truth["key_events"]:
        at = parse_iso(ev["at"])
        want = at.hour * 60 + at.minute
        ok = False
        for line in lines:
            got = _line_minute(line)
            if got is not None and score_named(line, ev):
                diff = abs(got - want) % 1440
                if min(diff, 1440 - diff) <= tz_minute_tolerance:
                    ok = True
                    break
        if ok:
            found += 1
        else:
            missing.append(ev)
    total = len(truth["key_events"])
    return {"found": found, "total": total, "ratio": found / total if total else 1.0, "missing": missing}


# --- checks and the command line -------------------------------------------------------------------------

def validate(sc: dict) -> list[str]:
    """The invariants the brief asks for; returns problems (empty when all hold)."""
    problems, msgs, truth = [], sc["messages"], sc["truth"]
    if not 3_000 <= len(msgs) <= 20_000:
        problems.append(f"{len(msgs)} messages")
    times = [_arrival(m) for m in msgs if m["topic"] != "alerts"]  # a notification's send time is not in it
    if times != sorted(times):
        problems.append("logs and changes not in time order")
    names = {a["labels"]["alertname"] for m in msgs if m["topic"] == "alerts" for a in m["value"]["alerts"]}
    if len(names) < 3 or len(truth["services_alerting"]) < 2:
        problems.append(f"alerts: {sorted(names)} over {truth['services_alerting']}")
    fps = [a["fingerprint"] for m in msgs if m["topic"] == "alerts" for a in m["value"]["alerts"]]
    if not all(re.fullmatch(r"[0-9a-f]{16}", fp) for fp in fps):
        problems.append("fingerprint not 16 hex")
    if not 6 <= len(truth["key_events"]) <= 12:
        problems.append(f"{len(truth['key_events'])} key events")
    minutes = (parse_iso(truth["impact_end"]) - parse_iso(truth["impact_start"])).total_seconds() / 60
    if not 10 <= minutes <= 90:
        problems.append(f"impact {minutes:.0f} min")
    lines = [f"{parse_iso(e['at']):%H:%M} {' '.join(e['match'])}" for e in truth["key_events"]]
    if score_timeline(lines, truth)["found"] != len(truth["key_events"]):
        problems.append("score_timeline does not find the truth's own timeline")
    return problems


def _arrival(m: dict) -> datetime:
    v = m["value"]
    return parse_iso(v["timestamp"] if m["topic"] == "logs" else v["at"])


def describe(sc: dict) -> str:
    msgs, truth = sc["messages"], sc["truth"]
    topics = Counter(m["topic"] for m in msgs)
    levels = Counter(m["value"]["level"] for m in msgs if m["topic"] == "logs")
    out = [f"== {sc['name']} (t0 {sc['t0']}): {len(msgs)} messages: " + ", ".join(
        f"{t}={topics[t]}" for t in ("alerts", "logs", "changes")) + "; logs by level: " + ", ".join(
        f"{lv}={n}" for lv, n in sorted(levels.items())),
        f"   based on: {sc['based_on']}"]
    for name, a in truth["alerts"].items():
        out.append(f"   alert {name} on {a['service']} ({a['severity']}) {a['first_start'][11:16]}-"
                   f"{a['last_end'][11:16]}")
    t, r = truth["trigger"], truth["resolution"]
    out.append(f"   trigger: {t['kind']} on {t['service']} at {t['at']} via {t['source']} match={t['match']}")
    out.append(f"   resolution: {r['action']} at {r['at']} match={r['match']}")
    out.append(f"   impact: {truth['impact_start']} -> {truth['impact_end']}; {len(truth['key_events'])} key events")
    return "\n".join(out)


def write_jsonl(sc: dict, out: Path) -> None:
    """<name>.jsonl (topic + value per line, arrival order), <name>.<topic>.jsonl (values only, for
    `opsdraft replay FILE --topic T`) and <name>.truth.json."""
    out.mkdir(parents=True, exist_ok=True)
    per_topic: dict[str, list[str]] = {}
    with open(out / f"{sc['name']}.jsonl", "w") as f:
        for m in sc["messages"]:
            f.write(json.dumps(m, separators=(",", ":")) + "\n")
            per_topic.setdefault(m["topic"], []).append(json.dumps(m["value"], separators=(",", ":")))
    for topic, lines in per_topic.items():
        (out / f"{sc['name']}.{topic}.jsonl").write_text("\n".join(lines) + "\n")
    meta = {k: sc[k] for k in ("name", "based_on", "t0", "truth")}
    (out / f"{sc['name']}.truth.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write each scenario as JSONL into this folder")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    scenarios = all_scenarios()
    elapsed = time.perf_counter() - started
    failed = False
    for sc in scenarios:
        print(describe(sc))
        for problem in validate(sc):
            failed = True
            print(f"   PROBLEM: {problem}")
        if args.out:
            write_jsonl(sc, args.out)
    total = sum(len(sc["messages"]) for sc in scenarios)
    print(f"{len(scenarios)} scenarios, {total} messages, generated in {elapsed:.2f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
