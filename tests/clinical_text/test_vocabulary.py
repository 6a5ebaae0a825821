"""The drug vocabulary (resources/clinical/drugs.json): names, UK canonicals, classes, look-alikes."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from clarke_desktop.clinical_text import vocabulary as v
from clarke_desktop.paths import resources_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ventolin", "salbutamol"),
        ("Nurofen", "ibuprofen"),
        ("prozac", "fluoxetine"),
        ("augmentin", "co-amoxiclav"),
        ("calpol", "paracetamol"),
        ("piriton", "chlorphenamine"),
        ("epipen", "adrenaline"),
        ("movicol", "macrogol"),
        ("thyroxine", "levothyroxine"),
        ("GTN", "glyceryl trinitrate"),
        ("septrin", "co-trimoxazole"),
        ("ramipril", "ramipril"),
    ],
)
def test_brand_and_synonym_to_generic(name: str, canonical: str) -> None:
    assert v.canonical_drug(name) == canonical


@pytest.mark.parametrize(
    ("us", "uk"),
    [
        ("acetaminophen", "paracetamol"),
        ("albuterol", "salbutamol"),
        ("glyburide", "glibenclamide"),
        ("epinephrine", "adrenaline"),
        ("norepinephrine", "noradrenaline"),
        ("meperidine", "pethidine"),
        ("levalbuterol", "levosalbutamol"),
        ("cyclosporine", "ciclosporin"),
        ("cephalexin", "cefalexin"),
        ("nitroglycerin", "glyceryl trinitrate"),
        ("indomethacin", "indometacin"),
        ("heroin", "diamorphine"),
    ],
)
def test_us_names_map_to_the_uk_canonical(us: str, uk: str) -> None:
    assert v.canonical_drug(us) == uk
    assert v.canonical_drug(uk) == uk
    assert us not in v.all_canonical()


def test_hyphens_spaces_and_case_are_the_same_name() -> None:
    for said in ("co-amoxiclav", "co amoxiclav", "Co-Amoxiclav", "  co   amoxiclav "):
        assert v.canonical_drug(said) == "co-amoxiclav"
    assert v.canonical_drug("co amoxi clav") is None


def test_longest_drug_at_prefers_the_longest_name() -> None:
    words = ["she", "uses", "glyceryl", "trinitrate", "spray"]
    assert v.longest_drug_at(words, 2) == ("glyceryl trinitrate", 4)
    assert v.longest_drug_at(["insulin", "glargine", "at", "night"], 0) == ("insulin glargine", 2)
    assert v.longest_drug_at(["sodium", "valproate"], 0) == ("sodium valproate", 2)
    assert v.longest_drug_at(["co", "amoxiclav"], 0) == ("co-amoxiclav", 2)
    assert v.longest_drug_at(["co-amoxiclav", "625"], 0) == ("co-amoxiclav", 1)
    assert v.longest_drug_at(words, 0) is None
    assert v.longest_drug_at(words, len(words)) is None


def test_longest_drug_at_stops_at_punctuation_and_reads_spelled_out_combinations_as_ingredients() -> None:
    assert v.longest_drug_at(["insulin", ",", "glargine"], 0) == ("insulin", 1)
    # "paracetamol and codeine" is co-codamol as a whole name, two drugs in running speech
    assert v.canonical_drug("paracetamol and codeine") == "co-codamol"
    assert v.longest_drug_at(["paracetamol", "and", "codeine"], 0) == ("paracetamol", 1)


@pytest.mark.parametrize(
    "word",
    ["the", "iron", "water", "ace", "fine", "heart", "pain", "well", "today", "potassium", "sodium", "glucose",
     "oxygen", "vitamin", "pill", "thyroid", "cholesterol", "honey", "armour", "ecstasy", "antibiotics"],
)  # fmt: skip
def test_everyday_words_are_not_drugs(word: str) -> None:
    assert not v.is_drug(word)
    assert v.longest_drug_at([word], 0) is None


def test_common_english_words_are_not_drug_names() -> None:
    common = (REPO / "clarke_desktop" / "asr" / "data" / "common_english.txt").read_text(encoding="utf-8")
    words = {w for w in common.split() if w.isalpha()}
    # the only everyday words kept are medicines' own names
    allowed = {"aspirin", "insulin", "morphine", "cocaine", "lithium", "nicotine", "opium", "adrenaline", "dopamine",
               "testosterone", "penicillin", "paracetamol", "heroin"}  # fmt: skip
    assert {w for w in words if v.is_drug(w)} <= allowed


def test_classes_hold_their_members() -> None:
    assert "ramipril" in v.class_members("ACE inhibitors")
    assert {"amoxicillin", "co-amoxiclav", "flucloxacillin", "penicillin"} <= v.class_members("Penicillins")
    assert {"cefalexin", "cefuroxime", "ceftriaxone"} <= v.class_members("Cephalosporins")
    assert {"codeine", "co-codamol", "morphine", "tramadol", "diamorphine"} <= v.class_members("Opioids")
    assert {"meropenem", "ertapenem"} <= v.class_members("Carbapenems")
    assert {"ibuprofen", "naproxen", "aspirin", "diclofenac", "celecoxib"} <= v.class_members("NSAIDs")
    assert {"losartan", "candesartan"} <= v.class_members("Angiotensin II receptor blockers")
    assert {"co-trimoxazole", "sulfamethoxazole"} <= v.class_members("Sulfonamide antibacterials")
    assert {"atorvastatin", "simvastatin"} <= v.class_members("Statins")
    assert {"clarithromycin", "erythromycin", "azithromycin"} <= v.class_members("Macrolides")
    assert {"doxycycline", "lymecycline"} <= v.class_members("Tetracyclines")
    assert {"ciprofloxacin", "levofloxacin"} <= v.class_members("Fluoroquinolones")
    assert {"bisoprolol", "atenolol", "labetalol", "carvedilol"} <= v.class_members("Beta blockers")
    assert {"omeprazole", "lansoprazole"} <= v.class_members("Proton pump inhibitors")
    assert {"sertraline", "citalopram"} <= v.class_members("SSRIs")
    assert "sitagliptin" in v.class_members("Gliptins (DPP-4 inhibitors)")
    assert "dapagliflozin" in v.class_members("Gliflozins (SGLT2 inhibitors)")
    assert {"gliclazide", "glibenclamide"} <= v.class_members("Sulfonylureas")
    assert v.drug_classes("co-amoxiclav") == ["Penicillins"]
    assert "Opioids" in v.drug_classes("co-codamol")
    assert v.drug_classes("paracetamol") == []
    assert v.class_members("no such class") == frozenset()


def test_classes_catch_no_false_stem_hits() -> None:
    beta = v.class_members("Beta blockers")
    assert all(re.search(r"(olol|alol|dilol)\b", m) or m == "co-tenidone" for m in beta)
    assert "stanozolol" not in beta
    assert not any("piprazole" in m for m in v.class_members("Proton pump inhibitors"))  # aripiprazole
    assert all(re.search(r"\bcef|\bceph", m) for m in v.class_members("Cephalosporins"))
    assert "cephaeline" not in v.class_members("Cephalosporins")
    assert "clindamycin" not in v.class_members("Macrolides")
    assert "vancomycin" not in v.class_members("Macrolides")
    assert "ferrous sulfate" not in v.class_members("Sulfonamide antibacterials")
    assert "paracetamol" not in v.class_members("NSAIDs")


def test_every_class_member_is_a_canonical_drug() -> None:
    canonical = v.all_canonical()
    for name in ("Penicillins", "Opioids", "NSAIDs", "Beta blockers", "Sulfonamide antibacterials"):
        assert v.class_members(name) <= canonical


@pytest.mark.parametrize(
    ("phrase", "cls"),
    [
        ("ace inhibitors", "ACE inhibitors"),
        ("ACE-inhibitor", "ACE inhibitors"),
        ("ace-inhibitors", "ACE inhibitors"),
        ("ACEi", "ACE inhibitors"),
        ("penicillin", "Penicillins"),
        ("penicillins", "Penicillins"),
        ("beta-blockers", "Beta blockers"),
        ("beta blocker", "Beta blockers"),
        ("NSAIDs", "NSAIDs"),
        ("non-steroidal anti-inflammatory drugs", "NSAIDs"),
        ("statin", "Statins"),
        ("PPIs", "Proton pump inhibitors"),
        ("sulfa drugs", "Sulfonamide antibacterials"),
        ("sulphonamides", "Sulfonamide antibacterials"),
        ("opiates", "Opioids"),
        ("cephalosporin", "Cephalosporins"),
        ("ARBs", "Angiotensin II receptor blockers"),
        ("DPP-4 inhibitors", "Gliptins (DPP-4 inhibitors)"),
        ("SGLT2 inhibitor", "Gliflozins (SGLT2 inhibitors)"),
    ],
)
def test_class_named(phrase: str, cls: str) -> None:
    assert v.class_named(phrase) == cls


def test_class_named_leaves_drugs_and_words_alone() -> None:
    assert v.class_named("tetracycline") is None  # the drug; "tetracyclines" is the class
    assert v.class_named("amoxicillin") is None
    assert v.class_named("the") is None


def test_longest_class_at() -> None:
    words = ["allergic", "to", "non-steroidal", "anti-inflammatory", "drugs"]
    assert v.longest_class_at(words, 2) == ("NSAIDs", 5)
    assert v.longest_class_at(["penicillin", "allergy"], 0) == ("Penicillins", 1)
    assert v.longest_class_at(["on", "an", "ace", "inhibitor"], 2) == ("ACE inhibitors", 4)
    assert v.longest_class_at(words, 0) is None


def test_every_lookalike_name_is_canonical() -> None:
    pairs = v.lookalike_pairs()
    assert len(pairs) >= 20
    assert ("citalopram", "escitalopram") in pairs
    for a, b in pairs:
        assert a != b
        assert v.canonical_drug(a) == a
        assert v.canonical_drug(b) == b


def _build_script():
    spec = importlib.util.spec_from_file_location(
        "build_drug_vocabulary", REPO / "scripts" / "build_drug_vocabulary.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_json_rebuilds_to_identical_bytes(tmp_path: Path) -> None:
    build = _build_script()
    source = build.find_source()
    if source is None:
        pytest.skip("drug-named-entity-recognition 2.0.9 is not available (see resources/clinical/README.md)")
    out = tmp_path / "drugs.json"
    assert build.main(["--source", str(source), "--out", str(out), "--quiet"]) == 0
    assert out.read_bytes() == (resources_dir() / "clinical" / "drugs.json").read_bytes()
