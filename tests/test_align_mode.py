"""The aligner's mode by language, the English-only encoder warning, and rules sent to an
unrelated target root (small hand-made trees, deterministic fake encoders)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from test_align_engine import BagOfWordsEncoder, tree

from multimodal_cat.align import MappingAligner
from multimodal_cat.align.infer import ReviewItem
from multimodal_cat.align.language import TreeLanguage, text_language, tree_language
from multimodal_cat.align.mode import LanguageWarning, choose_mode, encoder_advice, english_only
from multimodal_cat.align.review import LOW, UNRELATED, review_list, vote_support
from multimodal_cat.cli.main import main

# Two English trees that share almost no wording (as GS1's and Google's): the same language.
ENGLISH_SOURCE = [
    "Printed Matter",
    "Printed Matter > Novels and Stories",
    "Printed Matter > Magazines for Kids",
    "Garments",
    "Garments > Tops for Women",
    "Garments > Trousers for Men",
]
ENGLISH_TARGET = [
    "Media",
    "Media > Books",
    "Media > Periodicals",
    "Apparel & Accessories",
    "Apparel & Accessories > Shirts",
    "Apparel & Accessories > Pants",
]
SPANISH_SOURCE = [
    "Medios",
    "Medios > Libros",
    "Medios > Revistas",
    "Ropa y accesorios",
    "Ropa y accesorios > Camisas para mujer",
    "Ropa y accesorios > Pantalones para hombre",
]


class EnglishOnlyEncoder(BagOfWordsEncoder):
    """Stands for MiniLM: its key names it."""

    key = "text:minilm|pool=mean|max_length=64"


class OtherEncoder(BagOfWordsEncoder):
    key = "test-multilingual"


def test_tree_language_by_script_and_vocabulary() -> None:
    assert tree_language(tree(ENGLISH_SOURCE)).code == "en"
    assert tree_language(tree(SPANISH_SOURCE)).code == "es"
    assert text_language(["Zabawki dla dzieci", "Odzież i obuwie"]).code == "pl"
    assert text_language(["服装与配饰", "服装与配饰 > 衬衫"]).code == "zh"
    japanese = text_language(["おもちゃ", "衣類とアクセサリー"])
    assert (japanese.code, japanese.script) == ("ja", "Kana")
    unknown = text_language(["Xqzt", "Vrml"])
    assert unknown.code == "und" and "undetermined" in unknown.name
    assert "Spanish" in tree_language(tree(SPANISH_SOURCE)).evidence


def test_languages_differ_by_script_or_by_known_language() -> None:
    en, es = TreeLanguage("en", "Latin", ""), TreeLanguage("es", "Latin", "")
    und, zh = TreeLanguage("und", "Latin", ""), TreeLanguage("zh", "Han", "")
    assert es.differs_from(en) and zh.differs_from(und)
    assert not und.differs_from(en) and not en.differs_from(en)
    # undetermined in the same script: the shared wording decides
    assert choose_mode(und, en, lexical_share=0.05).name == "cross-language"
    assert choose_mode(und, en, lexical_share=0.5).name == "same-language"
    assert choose_mode(en, en, lexical_share=0.0).name == "same-language"


def test_same_language_trees_sharing_little_wording_keep_the_names_mode() -> None:
    source, target = tree(ENGLISH_SOURCE, "s"), tree(ENGLISH_TARGET, "g")
    result = MappingAligner(BagOfWordsEncoder(), cache=False).align(source, target)
    details = result.details
    assert details["lexical_share"] < 0.2  # the old cut-off would have switched mode here
    assert details["mode"] == "same-language" and details["family_structure"] is False
    assert details["ranker"] == "default"
    assert "both trees are English" in details["mode_reason"]
    assert details["languages"] == {"source": "en", "target": "en"}
    assert "family-structure" not in {item.kind for item in result.review}


def test_trees_in_two_languages_match_families_by_shape() -> None:
    source, target = tree(SPANISH_SOURCE, "s"), tree(ENGLISH_TARGET, "g")
    result = MappingAligner(OtherEncoder(), cache=False).align(source, target)
    details = result.details
    assert details["mode"] == "cross-language" and details["family_structure"] is True
    assert details["ranker"] == "semantic"
    assert "Spanish" in details["mode_reason"] and "English" in details["mode_reason"]
    assert details["warnings"] == []
    forced = MappingAligner(OtherEncoder(), cache=False, family_structure=False)
    details = forced.align(source, target).details
    assert details["mode"] == "same-language" and "was given" in details["mode_reason"]


def test_english_only_encoder_across_languages_warns_and_names_the_multilingual_one() -> None:
    source, target = tree(SPANISH_SOURCE, "s"), tree(ENGLISH_TARGET, "g")
    aligner = MappingAligner(EnglishOnlyEncoder(), cache=False, multilingual=None)
    with pytest.warns(LanguageWarning, match="multilingual-e5-small") as caught:
        result = aligner.align(source, target)
    assert "Spanish" in str(caught[0].message)
    assert result.details["warnings"] and "reads English only" in result.details["warnings"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", LanguageWarning)  # same language: no warning
        MappingAligner(EnglishOnlyEncoder(), cache=False).align(tree(ENGLISH_SOURCE), target)
    russian = TreeLanguage("und", "Cyrillic", "")  # a script alone also says "not English"
    english = TreeLanguage("en", "Latin", "")
    assert "Cyrillic" in encoder_advice("minilm", russian, english, switch_to=None)[1]
    assert english_only("minilm") and english_only("all-MiniLM-L6-v2")
    assert not english_only("multilingual-e5-small") and not english_only(BagOfWordsEncoder())


def test_english_only_encoder_is_replaced_by_an_installed_multilingual_one() -> None:
    source, target = tree(SPANISH_SOURCE, "s"), tree(ENGLISH_TARGET, "g")
    multilingual = OtherEncoder()
    aligner = MappingAligner(EnglishOnlyEncoder(), cache=False, multilingual=multilingual)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LanguageWarning)
        result = aligner.align(source, target)
    assert result.details["encoder"] == "test-multilingual" and multilingual.calls > 0
    assert "instead" in result.details["warnings"][0]


def test_cli_says_the_mode_and_warns_about_the_english_encoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_short_names: None
) -> None:
    source, target = tmp_path / "es.txt", tmp_path / "en.txt"
    source.write_text("".join(f"{i} - {p}\n" for i, p in enumerate(SPANISH_SOURCE)))
    target.write_text("".join(f"{i + 10} - {p}\n" for i, p in enumerate(ENGLISH_TARGET)))
    args = ["taxonomy", "align", str(source), str(target), "-o", str(tmp_path / "m.yml")]
    code = main([*args, "--encoder", "minilm", "--multilingual", "none", "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning:" in err and "Spanish" in err and "--encoder multilingual-e5-small" in err
    assert main([*args, "--encoder", "none", "--mode", "same-language"]) == 0
    err = capsys.readouterr().err
    assert "mode: same-language (family_structure=False was given" in err


def test_rule_sending_a_subtree_to_an_unrelated_root_is_flagged_with_lower_confidence() -> None:
    # target roots 0 (Media: 1, 2 below) and 3 (Apparel: 4, 5 below); source 0 with children
    # 1, 2 votes for Media, but its rule sends it to Apparel.
    t_parents = [-1, 0, 0, -1, 3, 3]
    s_parents = [-1, 0, 0, -1, 3]
    below = {0: [1, 2], 3: [4]}
    vote = [1, 1, 2, 4, 4]
    chosen = {0: 3, 1: 1, 2: 2, 3: 3, 4: 4}
    items = {s: ReviewItem(f"s{s}", "", f"g{g}", "", 0.9) for s, g in chosen.items()}
    support = vote_support(items, below, vote, t_parents, chosen)
    assert support == {0: pytest.approx(1 / 4)}  # (0 + 1) / (3 + 1)
    chosen[0] = 0  # sent where its subtree votes: nothing to flag
    assert vote_support(items, below, vote, t_parents, chosen) == {}
    items[4] = ReviewItem("s4", "", "g4", "", 0.1)
    listed = review_list(items, s_parents, t_parents, chosen, fraction=0.2, unrelated={0})
    # the unrelated rule first (its reason ranks first), though more confident
    assert [(i.source_id, i.reason) for i in listed] == [("s0", UNRELATED), ("s4", LOW)]


def test_aligner_lowers_the_confidence_of_a_root_sent_against_its_subtree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # without the subtree's support, "Bookish Stuff" follows its name to "Bookish Furniture",
    # while its children (and their votes) are under Media
    source = tree(["Bookish Stuff", "Bookish Stuff > Novels", "Bookish Stuff > Comics"], "s")
    target = tree(["Media", "Media > Novels", "Media > Comics", "Bookish Furniture"], "g")
    aligner = MappingAligner(BagOfWordsEncoder(), cache=False, structure_weight=0.0)
    result = aligner.align(source, target)
    rule = result.mapping.rules["s0"]
    assert rule.target_ids == ("g3",)
    assert {i.source_id: i.reason for i in result.review}["s0"] == UNRELATED
    monkeypatch.setattr("multimodal_cat.align.infer.vote_support", lambda *a, **k: {})
    unflagged = aligner.align(source, target).mapping.rules["s0"]
    # its own vote agrees, its 2 children vote Media: lowered by (1 + 1) / (2 + 1)
    assert rule.confidence == pytest.approx(unflagged.confidence * 2 / 3, abs=1e-3)


GERMAN_TITLES = [f"{t} {i}" for i in range(5) for t in (
    "Damen Winterjacke schwarz mit Kapuze", "Herren Laufschuhe blau Größe 42",
    "Kaffeemaschine mit Mahlwerk Edelstahl", "Kinder Fahrradhelm rot", "Bratpfanne beschichtet")]


def test_zero_shot_warns_once_when_the_products_are_in_a_language_the_encoder_cannot_read() -> None:
    from multimodal_cat.predictors.zero_shot import ZeroShotCategorizer
    from multimodal_cat.taxonomy import Taxonomy

    class EnglishOnly(BagOfWordsEncoder):
        key = "sentence-transformers/all-MiniLM-L6-v2 (bag of words)"

    tree = Taxonomy.from_paths(["Apparel > Jackets", "Footwear > Shoes", "Kitchen > Pans"])
    german = ZeroShotCategorizer(tree, EnglishOnly(), cache=False)
    with pytest.warns(LanguageWarning, match="looks German.*--text-encoder multilingual-e5-small"):
        german.predict(GERMAN_TITLES)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LanguageWarning)
        german.predict(GERMAN_TITLES)  # said once
        ZeroShotCategorizer(tree, EnglishOnly(), cache=False).predict(["red winter jacket with hood"] * 25)
        ZeroShotCategorizer(tree, EnglishOnly(), cache=False).predict(GERMAN_TITLES[:5])  # too few to tell
        ZeroShotCategorizer(tree, BagOfWordsEncoder(), cache=False).predict(GERMAN_TITLES)  # not English-only
    assert "German" in german.language_warning_


def test_categorize_says_the_language_warning_as_a_plain_line_and_refuses_text_encoder_with_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_short_names: None, tiny_checkpoint: Path
) -> None:
    tree = tmp_path / "tree.txt"
    tree.write_text("1 - Apparel\n2 - Apparel > Jackets\n3 - Footwear\n4 - Footwear > Shoes\n")
    feed = tmp_path / "de.csv"
    feed.write_text("title\n" + "\n".join(GERMAN_TITLES) + "\n")
    code = main(["categorize", str(feed), "--taxonomy", str(tree), "-o", str(tmp_path / "o.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("multimodal-cat: warning: the products' text looks German") == 1
    assert "Traceback" not in err and "LanguageWarning" not in err
    code = main(["categorize", str(feed), "--model", str(tiny_checkpoint), "--text-encoder",
                 "multilingual-e5-small", "-o", str(tmp_path / "m.csv")])
    assert code == 2 and "a trained model has its own text tower" in capsys.readouterr().err
