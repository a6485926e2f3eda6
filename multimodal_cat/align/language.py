"""The language a taxonomy tree is written in, by script and vocabulary (no dependencies).

Category names are short and repetitive, so a tree's language is read from all its names at
once: first the script of its letters (Han, Kana, Hangul, Cyrillic, Greek, Arabic, Hebrew,
Thai, Devanagari name a language or a script-level group on their own), then, for Latin
letters, which language's common catalogue words (function words such as "and", "für",
"para", and words such as "accessories", "kleding", "zabawki") make up the largest share of
the tree's words. A tree whose words match no list well enough is ``und`` (undetermined) in
its script.

The aligner uses it to choose its mode (see :func:`~multimodal_cat.align.mode.choose_mode`):
two trees in one language share wording, two in different languages share only meaning and
shape.

Example:
    >>> from multimodal_cat.taxonomy import Taxonomy
    >>> tree_language(Taxonomy.from_paths(["Jouets", "Jouets > Jeux de société"])).code
    'fr'
    >>> tree_language(Taxonomy.from_paths(["玩具", "玩具 > 积木"])).code
    'zh'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LANGUAGE_NAMES", "TreeLanguage", "text_language", "tree_language"]

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "pl": "Polish",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "el": "Greek",
    "he": "Hebrew",
    "th": "Thai",
    "und": "undetermined",
}

# Scripts that name a language (or a group, written und-<script>) by themselves.
_SCRIPT_LANGUAGE = {
    "Han": "zh",
    "Kana": "ja",
    "Hangul": "ko",
    "Greek": "el",
    "Hebrew": "he",
    "Thai": "th",
    "Cyrillic": "und",
    "Arabic": "und",
    "Devanagari": "und",
}
_SCRIPT_PREFIXES = (
    ("LATIN", "Latin"),
    ("CJK", "Han"),
    ("HIRAGANA", "Kana"),
    ("KATAKANA", "Kana"),
    ("HANGUL", "Hangul"),
    ("CYRILLIC", "Cyrillic"),
    ("GREEK", "Greek"),
    ("ARABIC", "Arabic"),
    ("HEBREW", "Hebrew"),
    ("THAI", "Thai"),
    ("DEVANAGARI", "Devanagari"),
)

# Common words of catalogue trees (function words first), one list per Latin-script language.
_VOCABULARY = {
    "en": "and for of the with in & accessories supplies equipment parts clothing home garden "
    "kitchen tools toys games baby pet pets food health beauty office sports electronics "
    "furniture shoes bags books music car other care products jewelry jewellery women men "
    "kids household outdoor hardware cleaning software computers video audio lighting decor "
    "storage watches paper art arts crafts party animals vehicles media cameras phones cases "
    "covers sets kits machines systems materials personal industrial",
    "de": "und für mit der die das von im zum zur zubehör bekleidung kleidung haus garten küche "
    "werkzeug werkzeuge spielzeug spiele tiere haustiere lebensmittel gesundheit schönheit "
    "büro elektronik möbel schuhe taschen bücher musik sonstige pflege produkte schmuck damen "
    "herren kinder artikel bedarf teile ausrüstung geräte zubehörteile",
    "fr": "et pour de des du la le les avec en au aux accessoires vêtements maison jardin "
    "cuisine outils jouets jeux bébé animaux alimentation santé beauté bureau électronique "
    "meubles chaussures sacs livres musique voiture autres soins produits bijoux femme homme "
    "enfants articles équipement équipements pièces fournitures appareils",
    "es": "y de para con del la el los las en accesorios ropa hogar jardín cocina herramientas "
    "juguetes juegos bebé bebés mascotas alimentos salud belleza oficina deportes electrónica "
    "muebles zapatos calzado bolsos libros música coche otros cuidado productos joyería mujer "
    "hombre niños artículos equipos equipo piezas suministros aparatos",
    "it": "e di per con del della dei delle il la le gli da in accessori abbigliamento casa "
    "giardino cucina utensili attrezzi giocattoli giochi neonati animali alimenti salute "
    "bellezza ufficio elettronica mobili scarpe borse libri musica altro cura prodotti "
    "gioielli donna uomo bambini articoli attrezzature ricambi forniture apparecchi",
    "nl": "en voor van met de het een accessoires kleding huis tuin keuken gereedschap speelgoed "
    "spellen dieren huisdieren voeding gezondheid schoonheid kantoor elektronica meubels "
    "schoenen tassen boeken muziek overige verzorging producten sieraden dames heren kinderen "
    "artikelen benodigdheden onderdelen apparatuur",
    "pt": "e de para com do da dos das o a os as em acessórios roupas vestuário casa jardim "
    "cozinha ferramentas brinquedos jogos bebê bebés animais alimentos saúde beleza escritório "
    "esportes eletrônicos móveis sapatos calçados bolsas livros música carro outros cuidados "
    "produtos joias feminino masculino crianças artigos equipamentos peças suprimentos",
    "pl": "i dla z do na w oraz akcesoria odzież dom ogród kuchnia narzędzia zabawki gry "
    "dziecko dzieci zwierzęta żywność zdrowie uroda biuro elektronika meble obuwie buty "
    "torby książki muzyka samochód inne pielęgnacja produkty biżuteria damskie męskie "
    "artykuły sprzęt części materiały urządzenia",
}
_WORDS = {code: frozenset(text.split()) for code, text in _VOCABULARY.items()}
_TOKEN = re.compile(r"[^\W\d_]+|&", re.UNICODE)
MIN_SHARE = 0.08  # least share of a tree's words in the winning list
MIN_LEAD = 1.25  # the winner's share over the runner-up's


@dataclass(frozen=True)
class TreeLanguage:
    """The language of a tree (or of a few texts).

    Attributes:
        code: ISO 639-1 code (``en``, ``es``, ``zh``...) or ``und`` (undetermined).
        script: the script of most letters (``Latin``, ``Han``, ``Cyrillic``...).
        evidence: in plain words, what decided it.
    """

    code: str
    script: str
    evidence: str

    @property
    def name(self) -> str:
        """The language's English name (``undetermined (Latin script)`` for ``und``)."""
        if self.code == "und":
            return f"undetermined ({self.script} script)"
        return LANGUAGE_NAMES.get(self.code, self.code)

    def differs_from(self, other: TreeLanguage) -> bool:
        """Whether two trees are in different languages: different scripts, or two known
        different languages (an undetermined one in the same script counts as the same)."""
        if self.script != other.script:
            return True
        return "und" not in (self.code, other.code) and self.code != other.code


def _script(char: str) -> str | None:
    name = unicodedata.name(char, "")
    for prefix, script in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    return None


def text_language(texts: Iterable[str]) -> TreeLanguage:
    """The language of ``texts`` taken together (see the module docstring)."""
    texts = list(texts)
    scripts = Counter(s for text in texts for ch in text if ch.isalpha() and (s := _script(ch)))
    if not scripts:
        return TreeLanguage("und", "Latin", "no letters found")
    if scripts["Kana"] and scripts["Han"]:  # Japanese mixes kana into Han text
        scripts["Kana"] += scripts.pop("Han")
    script, count = scripts.most_common(1)[0]
    share = count / sum(scripts.values())
    if script != "Latin":
        code = _SCRIPT_LANGUAGE.get(script, "und")
        return TreeLanguage(code, script, f"{share:.0%} of the letters are {script} script")
    return _latin_language(texts)


def _latin_language(texts: list[str]) -> TreeLanguage:
    """The Latin-script language whose catalogue words make up the largest share of ``texts``."""
    words = [w.lower() for text in texts for w in _TOKEN.findall(text)]
    if not words:
        return TreeLanguage("und", "Latin", "no words found")
    counts = Counter(words)
    shares = {code: sum(counts[w] for w in vocab) / len(words) for code, vocab in _WORDS.items()}
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    (best, top), (second, runner) = ranked[0], ranked[1]
    said = (
        f"{top:.0%} of the words are common {LANGUAGE_NAMES[best]} catalogue words "
        f"(next: {LANGUAGE_NAMES[second]}, {runner:.0%})"
    )
    if top < MIN_SHARE or top < MIN_LEAD * runner:
        return TreeLanguage("und", "Latin", said)
    return TreeLanguage(best, "Latin", said)


def tree_language(taxonomy: object) -> TreeLanguage:
    """The language of a :class:`~multimodal_cat.taxonomy.Taxonomy`'s category names."""
    return text_language(category.name for category in taxonomy)  # type: ignore[attr-defined]
