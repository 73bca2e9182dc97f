"""Rebuilds first_names.txt: the US Census 1990 first names (public domain; from the PyPI package `names`, MIT),
less those that English also writes in lower case as a word (Webster's Second, public domain; from the PyPI
package `english-words`, MIT): "Will", "May", "Grant", "Summer" stay out, "Nadia", "Diego", "Camila" stay in.

    pip install names==0.3.0 english-words==2.0.2 && python redaction/names/make_first_names.py
"""

from importlib.resources import files
from pathlib import Path

from english_words import get_english_words_set


def main() -> None:
    lower_words = {w for w in get_english_words_set(["web2"], lower=False) if w.islower()}
    found: dict[str, None] = {}
    for part in ("dist.female.first", "dist.male.first"):
        for line in (files("names") / part).read_text().splitlines():
            name = line.split()[0].capitalize()
            if name.lower() not in lower_words:
                found[name] = None
    out = Path(__file__).with_name("first_names.txt")
    out.write_text("\n".join(sorted(found)) + "\n", encoding="utf-8")
    print(f"{len(found)} names -> {out}")


if __name__ == "__main__":
    main()
