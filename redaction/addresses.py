"""Street addresses in many countries' formats, found by shape: a street head, then what follows it.

A head is a street in one of the ways the world writes them: "3240 Meadow Drive", "Via Leopardi 83",
"Lumbyholmvej 46", "PSC 2322, Box 6025 APO AA 88307", "P.O. Box 63", "the corner of Derry Street and Elm Row",
or any "number, words, number" run that is followed by a unit ("Apt. 542") or a place ("..., Keflavík"), or comes
after a phrase that announces an address ("lives at", "address:"). The span then grows over what follows it:
units, the town and country, postcodes, and the short lines of an address block.

Military and post-box addresses are caught in every source; the rest only in free text (tickets, alerts), where
"502 Bad Gateway 3" would otherwise look like a street.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from redaction.words import COMMON_WORDS, TECH_WORDS

# A word that starts with a letter that is not lower-case Latin, Greek or Cyrillic: "Strojírenská", "ΠΑΦΟΣ", "Øst".
_NOT_LOWER = r"(?![a-zß-öø-ÿα-ωά-ώа-яё])"
_CAP = _NOT_LOWER + r"[^\W\d_][\w'’.-]*"
# Small words inside street and place names: "Rue du Niger", "Tarazona de Guareña", "Bystré u Policky".
_PARTICLE = r"(?:de|du|des|del|della|di|da|do|dos|das|la|le|les|van|von|der|den|am|an|im|nad|pod|u|y|e|i|el|al)"
_STREET_LOWER = (r"(?:vei|vej|veien|veg|vegen|gate|gata|gatan|gade|tee|põik|kapu|út|útja|utca|u\.|ulica|street|st|"
                 r"str\.?|straße|strasse|aqq\.)")
_WORDS = rf"{_CAP}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?(?:{_CAP}|{_STREET_LOWER}(?![\w-]))){{0,4}}"
_NUM = r"\d{1,5}[A-Za-z]?(?![\w-]|[.:]\d)"
_LEAD = r"(?:\d{1,6}[ \t]+){0,2}"  # a postcode or building number before the street: "35116 Rua Arapiraca 1943"

# Street types written before the name: Via, Rua, Rue, Avenida, Calle, ul. ...
_PREFIX = (r"(?:Via|Viale|Piazza|Corso|Largo|Vicolo|Rua|R\.?|Avenida|Avda\.|Av\.|Calle|Carrera|Camino|Paseo|Plaza|"
           r"Rambla|Ronda|Carretera|Travessa|Praça|Estrada|Bairro|Rúa|Rue|rue|Avenue|avenue|Boulevard|Bd\.?|Chemin|"
           r"Allée|Impasse|Quai|Route|Place|ul\.|ulica|al\.|aleja|Strada|Calea|Jalan|Jl\.|Ulitsa|Prospekt|Leoforos|C/)")
# Street types written after the name, as a word or joined to it: Meadow Drive, Lumbyholmvej, Favoritenstrasse.
_SUFFIX_WORD = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|"
                r"Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Cres|Close|Grove|Gardens|Heights|Row|Mews|Walk|Hill|"
                r"Circle|Cir|Trail|Viaduct|Radial|Greens|Green|Mills|Stream|Mission|Shoals|Valley|Park|Plaza|Parade|"
                r"Esplanade|Chaussee|Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Laan|Straat|Vej|Vei|"
                r"Gata|Gatan)")
_JOINED = (r"(?:stra(?:ss|ß)e|str\.|gasse|weg|platz|allee|ring|damm|ufer|chaussee|vej|vei|veien|vegen|vägen|gata|"
           r"gatan|gade|stígur|braut|tie|katu|kuja|straat|laan|plaats|gracht|plein|dreef|ská|ova|ovo|alléen)")
_UNIT = (r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Room|Rm|Bldg|Building|apt|suite)\.?[ \t]*#?[ \t]*"
         r"\d{1,5}[A-Za-z]?")

_MILITARY = re.compile(
    r"(?:\b(?:PSC|CMR|Unit)[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{3,5}|\bUS[A-Z]{1,3}[ \t]+[^\W\d_][\w'’-]*)"
    r"[ \t]*[\n,]?[ \t]*\b[ADF]PO[ \t]+A[AEP][ \t]+\d{5}\b|\b[ADF]PO[ \t]+A[AEP][ \t]+\d{5}\b")
_PO_BOX = re.compile(r"\b(?:P\.?[ \t]?O\.?[ \t]?Box|Post(?:al)?[ \t]?(?:Office[ \t])?Box|Postbox|Postfach|Apartado|"
                     r"Caixa[ \t]Postal)[ \t]*\d{1,6}\b")

_CORNER_PART = rf"(?:\d{{1,5}}|\d+\.|P\.O\.[ \t]Box[ \t]\d+|{_CAP}|{_STREET_LOWER}|{_PARTICLE})"
_HEADS = [
    # English order: number, name, street type. "083 254 Damvergi Street", "22 Pollen Crescent", "2914 184th St".
    re.compile(rf"(?<![\w.-]){_LEAD}\d{{1,5}}[A-Za-z]?[ \t]+(?:(?:{_CAP}|\d+(?:st|nd|rd|th))[ \t]+){{1,4}}"
               rf"{_SUFFIX_WORD}\b\.?"),
    # Street type first, number after: "Via Leopardi 83", "Rue de Piétrain 371", "ul. Asnyka Adama 82".
    re.compile(rf"(?<![\w.-]){_LEAD}{_PREFIX}[ \t]+{_WORDS}(?:[ \t]+{_NUM}\.?)?"),
    # Street type joined to the name or after it, number after: "Lumbyholmvej 46", "Langenhorner Chaussee 76".
    re.compile(rf"(?<![\w.-]){_LEAD}(?:{_CAP}[ \t]+){{0,3}}(?:[^\W\d_][\w'’-]*(?i:{_JOINED})|{_SUFFIX_WORD})"
               rf"[ \t]+{_NUM}\.?"),
    # "the corner of 262 Thisseos Avenue and Semmens Greens".
    re.compile(rf"(?i:\b(?:the[ \t]+)?corner[ \t]+of[ \t]+)(?:{_CORNER_PART}[ \t]+){{1,10}}?and[ \t]+"
               rf"(?:{_CAP}|\d{{1,5}})(?:[ \t]+(?:{_CAP}|\d{{1,5}})){{0,6}}"),
]
# Any "words number" street: kept only with a unit or address lines after it, a town after it when it starts with
# a number ("788 Fitjabraut 87, Keflavík"), or "street" after it. After "lives at", "address:"... _CUED takes it.
_GENERIC = re.compile(rf"(?<![\w.-])(?:{_UNIT}[ \t]+)?{_LEAD}{_WORDS}[ \t]+{_NUM}\.?")
_STREET_AFTER = re.compile(r"[ \t]+street\b")  # "Ποσειδώνος 54 street in Πάφος"
_CUE = re.compile(r"(?i:\b(?:address(?:es)?(?:[ \t]+(?:is|to|of[^\n:?]{0,40}?[ \t]is))?|lives?[ \t]+(?:at|on|in)|"
                  r"lived[ \t]+(?:at|in)|located[ \t]+at|office[ \t]+is[ \t]+at|sent[ \t]+to|send[^\n.?]{0,20}?[ \t]to|"
                  r"return[ \t]+(?:it[ \t]+)?to|deliver(?:ed|y)?[ \t]+to|ship(?:ped)?[ \t]+to|meet[ \t]+me[ \t]+at|"
                  r"moved[ \t]+to))[ \t]*:?[ \t]*\n?[ \t]*")
_CUED = re.compile(rf"(?:{_WORDS}[ \t]+and[ \t]+)?(?:{_LEAD}(?:{_WORDS}[ \t]+)?{_NUM}\.?(?:[ \t]+{_WORDS})?|"
                   rf"{_PO_BOX.pattern})")

_CONT_UNIT = re.compile(rf"[ \t]*,?[ \t]*(?:\n[ \t]*(?:[^\w\s]{{1,4}}[ \t]*)?)?{_UNIT}")
# Towns and countries: no dot inside, so that a tail stops at the end of the sentence ("... Austria. Please").
_TAIL_WORD = rf"{_NOT_LOWER}[^\W\d_][\w'’-]*(?:[ \t]+\([^\W\d_]+\))?"


def _more_tail(digits: str) -> str:
    """One more word of a place (or a number of `digits` digits: a postcode)."""
    return rf",?[ \t]+(?:{_PARTICLE}[ \t]+)?(?:{_TAIL_WORD}|\d{{{digits}}}(?![\w-]))"


_CONT_PLACE = re.compile(rf"[ \t]*,?[ \t]+(?!{_UNIT}){_TAIL_WORD}(?:{_more_tail('4,6')}){{0,5}}")
# One short line of an address block: "Svratka", "KEMINMAA, LL 55306", ", NSW", " 41860", "Czech Republic 45098".
_CONT_LINE = re.compile(
    rf"[ \t]*\n(?:[ \t]*\n)?[ \t]*(?:[^\w\s]{{1,4}}[ \t]*)?(?:,[ \t]*)?"
    rf"(?:{_TAIL_WORD}(?:{_more_tail('1,6')}){{0,5}}|\d{{4,6}}(?![\w-]))"
    rf"[ \t]*(?=$|\n|[.?!,;:](?:\s|$)|[ \t][a-z])")  # the last line may run on: "Brazil for post mail?"
_LOG_NEEDS = ("po", "box", "postfach", "apartado", "caixa")  # _MILITARY and _PO_BOX need one of these
_MAX_EXTENSIONS = 6
# Above NER's PERSON (0.85): spaCy often calls a street name or a town a person ("Fitjabraut"), and the address
# is the better placeholder for the whole run.
ADDRESS_SCORE = 0.86
_MONTHS = frozenset("""january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec""".split())
_STREET_WORDS = frozenset("street avenue road lane drive boulevard court place square parkway highway way".split())
# Capitalised words that are never part of a street or town: sentence starts, months, ops vocabulary.
_NOT_PLACE = (COMMON_WORDS - {"new"}) | _MONTHS | (TECH_WORDS - _STREET_WORDS)


def _ok_words(text: str, line: bool = False) -> bool:
    """No ops word inside: "500 Internal Server Error 3" is not a street. A block line may start with "The"
    ("The Gardens"), which on the street's own line would begin the next sentence."""
    words = re.findall(r"[^\W\d_][\w'’.-]*", text)
    if line and words[:1] == ["The"]:
        words = words[1:]
    return not any(w.casefold().strip(".,") in _NOT_PLACE for w in words if w[0].isupper())


def _grow(text: str, end: int, prose: bool) -> tuple[int, set[re.Pattern[str]]]:
    """Extends an address over units, places and block lines; says which of them followed."""
    grew: set[re.Pattern[str]] = set()
    for _ in range(_MAX_EXTENSIONS):
        for cont in (_CONT_UNIT, _CONT_PLACE, _CONT_LINE) if prose else (_CONT_UNIT,):
            m = cont.match(text, end)
            if m and m.end() > end and _ok_words(m.group(), line=cont is _CONT_LINE):
                end = m.end()
                grew.add(cont)
                break
        else:
            break
    return end, grew


def address_spans(text: str, prose: bool) -> Iterator[tuple[int, int]]:
    """(start, end) of each address in text; free-text rules only when prose is true."""
    if not any(c.isdigit() for c in text):
        return
    if not prose and not any(k in text.casefold() for k in _LOG_NEEDS):
        return  # most log lines: neither rule for logs can match
    for rx in (_MILITARY, _PO_BOX):
        for m in rx.finditer(text):
            yield m.start(), _grow(text, m.end(), prose)[0] if prose else m.end()
    if not prose:
        return
    for rx in _HEADS:
        for m in rx.finditer(text):
            if _ok_words(m.group()):
                yield m.start(), _grow(text, m.end(), prose)[0]
    for m in _GENERIC.finditer(text):
        if not _ok_words(m.group()):
            continue
        end, grew = _grow(text, m.end(), prose)
        # Without a number first ("Premium Plan 2, Billing"), a town after it is not evidence enough.
        if grew - ({_CONT_PLACE} if not m.group()[0].isdigit() else set()) or _STREET_AFTER.match(text, end):
            yield m.start(), end
    for cue in _CUE.finditer(text):  # "lives at Monika and Turjaška 48": the phrase vouches for the address
        m = _CUED.match(text, cue.end())
        if m and _ok_words(m.group()):
            yield m.start(), _grow(text, m.end(), prose)[0]
