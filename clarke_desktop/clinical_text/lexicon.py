"""Clinical words that are not drugs or tests: diagnoses and how they are said, allergic reaction
groups. Drugs come from the maintained vocabulary (`vocabulary`), tests from `labs`."""

from __future__ import annotations

from functools import cache

# canonical diagnosis -> ways it is said. Symptoms are deliberately absent (not diagnoses).
DIAGNOSES: dict[str, tuple[str, ...]] = {
    "type 2 diabetes": ("type 2 diabetes", "type two diabetes", "t2dm", "type 2 diabetes mellitus"),
    "type 1 diabetes": ("type 1 diabetes", "type one diabetes", "t1dm"),
    "hypertension": ("hypertension", "high blood pressure"),
    "asthma": ("asthma",),
    "copd": ("copd", "chronic obstructive pulmonary disease", "emphysema", "chronic bronchitis"),
    "heart failure": ("heart failure", "cardiac failure", "hfref", "left ventricular systolic dysfunction"),
    "atrial fibrillation": ("atrial fibrillation", "af"),
    "angina": ("angina",),
    "coronary artery disease": (
        "coronary artery disease",
        "ischaemic heart disease",
        "coronary heart disease",
    ),
    "myocardial infarction": ("myocardial infarction", "heart attack"),
    "chronic kidney disease": ("chronic kidney disease", "ckd", "kidney disease"),
    "depression": ("depression", "depressive disorder", "low mood disorder"),
    "anxiety": ("anxiety disorder", "generalised anxiety"),
    "hypothyroidism": ("hypothyroidism", "underactive thyroid"),
    "hyperthyroidism": ("hyperthyroidism", "overactive thyroid"),
    "stroke": ("stroke", "cerebrovascular accident"),
    "transient ischaemic attack": ("transient ischaemic attack", "tia"),
    "osteoarthritis": ("osteoarthritis",),
    "rheumatoid arthritis": ("rheumatoid arthritis",),
    "gout": ("gout",),
    "osteoporosis": ("osteoporosis",),
    "hypercholesterolaemia": ("hypercholesterolaemia", "high cholesterol", "hyperlipidaemia"),
    "obesity": ("obesity",),
    "peripheral neuropathy": ("peripheral neuropathy", "diabetic neuropathy", "neuropathy"),
    "retinopathy": ("retinopathy", "diabetic retinopathy"),
    "anaemia": ("anaemia", "anemia"),
    "epilepsy": ("epilepsy",),
    "cancer": ("cancer", "carcinoma", "malignancy"),
    "pneumonia": ("pneumonia",),
    "sleep apnoea": ("sleep apnoea", "sleep apnea"),
}

# Reaction groups: a reaction said is compared with the recorded one by group.
REACTIONS: dict[str, tuple[str, ...]] = {
    "anaphylaxis": ("anaphylaxis", "anaphylactic", "throat swelling", "throat closed", "collapsed"),
    "rash": ("rash", "hives", "urticaria", "eruption", "itchy", "itching", "skin reaction", "blotchy"),
    "bronchospasm": ("bronchospasm", "wheeze", "wheezy", "wheezing", "chest tight", "tight chest", "asthma attack",
                     "breathless", "chest tightness"),
    "angioedema": ("angioedema", "swelling", "swollen", "lips swelled", "face swelled"),
    "nausea": ("nausea", "nauseous", "sick", "vomiting", "vomited", "vomit"),
    "diarrhoea": ("diarrhoea", "diarrhea", "loose stools"),
}  # fmt: skip


# Allergens that are not drugs (drugs and drug classes come from the vocabulary).
NON_DRUG_ALLERGENS: frozenset[str] = frozenset({
    "latex", "nuts", "nut", "peanut", "peanuts", "egg", "eggs", "shellfish", "fish", "milk", "dairy", "lactose",
    "gluten", "wheat", "soya", "soy", "sesame", "strawberries", "kiwi", "celery", "mustard", "lupin", "sulphites",
    "sulfites", "plasters", "plaster", "elastoplast", "adhesive", "tape", "nickel", "wasp", "wasps", "bee", "bees",
    "pollen", "grass", "dust", "mites", "cats", "cat", "dogs", "dog", "horses", "mould", "iodine", "contrast",
    "chlorhexidine", "lanolin", "perfume", "fragrance", "hair", "dye", "bananas", "avocado", "chocolate",
})  # fmt: skip

# Medical words that are not drugs, tests or diagnoses above but sound like each other or like
# drugs, so an ASR correction must never rewrite them.
_MEDICAL_WORDS = frozenset({
    "hypertension", "hypotension", "hyperglycaemia", "hypoglycaemia", "hyperglycemia", "hypoglycemia",
    "hyperkalaemia", "hypokalaemia", "hypernatraemia", "hyponatraemia", "hypercalcaemia", "hypocalcaemia",
    "tachycardia", "bradycardia", "hyperthyroid", "hypothyroid", "hyperthyroidism", "hypothyroidism",
    "hypertrophy", "hypotrophy", "dysphagia", "dysphasia", "aphasia", "aphagia", "ileum", "ilium",
    "perineal", "peroneal", "prostate", "prostrate", "mucous", "mucus", "dysuria", "dyspnoea", "dyspnea",
    "arthritis", "arthrosis", "nephritis", "neuritis", "hepatitis", "colitis", "gastritis", "cystitis",
    "bronchitis", "bronchiolitis", "pneumonia", "pneumonitis", "angina", "anaemia", "anemia", "asthma",
    "eczema", "psoriasis", "migraine", "epilepsy", "diabetes", "diabetic", "cellulitis", "sepsis",
    "haematuria", "hematuria", "haemoptysis", "hemoptysis", "haematemesis", "melaena", "oedema", "edema",
    "fibrillation", "palpitations", "syncope", "vertigo", "tinnitus", "otitis", "sinusitis", "tonsillitis",
    "pharyngitis", "laryngitis", "conjunctivitis", "dermatitis", "urticaria", "anaphylaxis", "angioedema",
    "hypoxia", "hypoxaemia", "hypercapnia", "ischaemia", "ischemia", "infarction", "embolism", "thrombosis",
    "osteoporosis", "osteoarthritis", "osteopenia", "gout", "lupus", "sarcoidosis", "tuberculosis",
    "appendicitis", "diverticulitis", "diverticulosis", "pancreatitis", "cholecystitis", "cirrhosis",
    "nephropathy", "neuropathy", "retinopathy", "cardiomyopathy", "myopathy", "encephalopathy",
    "hyperlipidaemia", "hypercholesterolaemia", "dyslipidaemia", "obesity", "dementia", "delirium",
    "depression", "anxiety", "schizophrenia", "bipolar", "insomnia", "constipation", "diarrhoea", "diarrhea",
    "nausea", "vomiting", "headache", "abdominal", "thoracic", "lumbar", "cervical", "sacral", "femoral",
    "hyperplasia", "hypoplasia", "neoplasia", "dysplasia", "carcinoma", "melanoma", "lymphoma", "leukaemia",
    "metastasis", "metastases", "benign", "malignant", "biopsy", "endoscopy", "colonoscopy", "gastroscopy",
    "ultrasound", "echocardiogram", "electrocardiogram", "spirometry", "mammogram", "hysterectomy",
    "cholecystectomy", "appendicectomy", "prostatectomy", "mastectomy", "menorrhagia", "amenorrhoea",
    "dysmenorrhoea", "endometriosis", "pregnancy", "contraception", "menopause", "glaucoma", "cataract",
    "hyperemesis", "hypermobility", "hyperhidrosis", "hypertonia", "hypotonia", "hyperreflexia",
})  # fmt: skip


@cache
def medical_words() -> frozenset[str]:
    """Single medical words (diagnoses as said, and the list above) that are never rewritten."""
    words = set(_MEDICAL_WORDS)
    for canonical, phrases in DIAGNOSES.items():
        for phrase in (canonical, *phrases):
            words.update(w for w in phrase.split() if len(w) >= 5)
    return frozenset(words)


# What a date can be the date of, by group: a date is bound to the event said with it, and two
# mentions of one date support each other only when their events agree.
_EVENT_GROUPS: dict[str, tuple[str, ...]] = {
    "imaging": ("scan", "ct", "mri", "x-ray", "xray", "ultrasound", "echo", "echocardiogram", "angiogram",
                "angiography", "mammogram", "imaging", "dexa"),
    "bloods": ("bloods", "blood", "results", "result", "test", "tests", "level", "levels"),
    "procedure": ("endoscopy", "colonoscopy", "gastroscopy", "biopsy", "operation", "surgery", "procedure",
                  "section", "caesarean", "replacement"),
    "admission": ("admission", "admitted", "discharged", "a&e"),
    "appointment": ("appointment", "review", "clinic", "visit", "seen", "follow-up", "followup"),
    "vaccine": ("vaccine", "vaccination", "jab", "booster", "immunisation"),
    "birth": ("born", "birth", "dob", "birthday"),
    "period": ("lmp", "period"),
    "diagnosis": ("diagnosed", "diagnosis"),
    "medicine": ("started", "commenced", "stopped"),
    "incident": ("fall", "fell", "injury", "accident", "attack", "stroke", "mi", "infarction"),
}  # fmt: skip
EVENTS: dict[str, str] = {word: group for group, words in _EVENT_GROUPS.items() for word in words}
