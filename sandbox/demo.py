"""Deterministic synthetic demo assets (hospital visits, insurance claims) with planted rarities."""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20261122
VICTIM_PATIENT_ID = "P000042"

PATIENT_COUNT = 8000
VISIT_COUNT = 30_000
INSURED_SHARE = 0.70
CLAIM_SHARE = 0.95
YEAR_START = date(2024, 1, 1)
YEAR_DAYS = 366
NORMAL_MAX_AGE = 99
NORMAL_MAX_COST_CENTS = 15_000_00
MIN_COST_CENTS = 10_00

VISITS_CSV = "hospital.visits.csv"
CLAIMS_CSV = "insurance.claims.csv"

Q87_PATIENTS = ("P003117", "P006250")
POSTCODE_PATIENT = "P005555"
RARE_POSTCODE = "350999"
F999_PATIENTS = ("P001001", "P002002", "P004004")
RARE_FACILITY = "F999"
VICTIM_COSTS = ("18500.00", "18750.00", "19100.00")
VICTIM_DATES = (date(2024, 3, 12), date(2024, 7, 2), date(2024, 11, 19))
Q87_DATES = {
    "P003117": (date(2024, 2, 20), date(2024, 8, 14)),
    "P006250": (date(2024, 5, 9), date(2024, 10, 23)),
}

PLANTED_RARITIES: tuple[dict[str, Any], ...] = (
    {
        "name": "oldest_patient",
        "asset": "hospital.visits",
        "where": "age = 104",
        "patient_ids": (VICTIM_PATIENT_ID,),
        "rows": 3,
        "district": "Lianjiang",
        "diagnosis": "C34",
        "costs": VICTIM_COSTS,
        "description": (
            "P000042 is the only patient aged 104 (every other patient is at most 99), lives in "
            "Lianjiang and has exactly 3 Oncology visits for C34 (lung cancer) costing 18500.00, "
            "18750.00 and 19100.00: the three highest costs in the asset (all others are at most "
            "15000.00). Any group or filter on age >= 100 isolates this one person; the patient "
            "is also insured with exactly 3 claims, one per visit."
        ),
    },
    {
        "name": "rare_diagnosis",
        "asset": "hospital.visits",
        "where": "diagnosis = 'Q87'",
        "patient_ids": Q87_PATIENTS,
        "rows": 4,
        "description": (
            "Diagnosis Q87 (congenital malformation syndromes) occurs only for two children, "
            "P003117 (age 4) and P006250 (age 9), each with exactly 2 Pediatrics visits, both Q87."
        ),
    },
    {
        "name": "unique_postcode",
        "asset": "hospital.visits",
        "where": f"postcode = '{RARE_POSTCODE}'",
        "patient_ids": (POSTCODE_PATIENT,),
        "rows": 2,
        "description": (
            "Postcode 350999 is held by exactly one patient, P005555, who has exactly 2 visits; "
            "every other postcode is shared by hundreds of patients."
        ),
    },
    {
        "name": "rare_facility_visits",
        "asset": "hospital.visits",
        "where": f"facility_code = '{RARE_FACILITY}'",
        "patient_ids": F999_PATIENTS,
        "rows": 3,
        "description": (
            "Facility F999 was visited by exactly 3 patients (P001001, P002002, P004004), one "
            "visit each; each of them has 2 visits in total."
        ),
    },
    {
        "name": "rare_facility_claims",
        "asset": "insurance.claims",
        "where": f"facility_code = '{RARE_FACILITY}'",
        "patient_ids": F999_PATIENTS,
        "rows": 3,
        "description": (
            "The same 3 patients are insured and each F999 visit has exactly one claim, so "
            "F999 also appears in exactly 3 claims of 3 patients; a join on facility_code "
            "isolates them."
        ),
    },
)

SURNAMES = (
    ("Chen", 12), ("Lin", 12), ("Huang", 8), ("Zheng", 7), ("Wang", 7), ("Li", 7), ("Zhang", 6),
    ("Wu", 5), ("Liu", 5), ("Yang", 4), ("Xu", 4), ("Zhou", 4), ("Lu", 3), ("He", 3), ("Guo", 3),
    ("Zhu", 2), ("Luo", 2), ("Ye", 2), ("Fang", 2), ("Cai", 2),
)  # fmt: skip
GIVEN_NAMES = {
    "F": (
        "Fang", "Xiuying", "Min", "Jing", "Li", "Yan", "Juan", "Xia", "Hui", "Ying", "Ling",
        "Mei", "Lan", "Xiaohong", "Yuting", "Shufen", "Meiling", "Xinyi", "Zihan", "Yuqing",
    ),
    "M": (
        "Wei", "Qiang", "Lei", "Jun", "Yong", "Jie", "Tao", "Ming", "Chao", "Hao", "Bin",
        "Jianguo", "Zhiqiang", "Haoran", "Yu", "Jianhua", "Guoqiang", "Zihao", "Yichen", "Wenbin",
    ),
}  # fmt: skip
DISTRICTS = (
    ("Gulou", 16, ("350001", "350003", "350025")),
    ("Taijiang", 13, ("350004", "350005", "350009")),
    ("Cangshan", 18, ("350007", "350008", "350026")),
    ("Jinan", 14, ("350011", "350012", "350014")),
    ("Mawei", 7, ("350015", "350029")),
    ("Changle", 12, ("350200", "350212")),
    ("Minhou", 13, ("350100", "350108")),
    ("Lianjiang", 7, ("350500", "350501")),
)
AGE_BANDS = ((0, 9, 9), (10, 19, 6), (20, 29, 10), (30, 39, 13), (40, 49, 13), (50, 59, 15),
             (60, 69, 15), (70, 79, 11), (80, 89, 6), (90, NORMAL_MAX_AGE, 2))  # fmt: skip
FACILITIES = (
    ("F101", 18), ("F102", 14), ("F103", 12), ("F104", 10), ("F105", 9), ("F106", 8),
    ("F107", 7), ("F108", 6), ("F109", 6), ("F110", 5), ("F111", 5),
)  # fmt: skip
HOME_FACILITY_SHARE = 0.70
REPEAT_CONDITION_SHARE = 0.60

# diagnosis -> (median cost in CNY, minimum age, maximum age, sex or "")
DIAGNOSES: dict[str, tuple[float, int, int, str]] = {
    "J06": (150, 0, 120, ""),  # acute upper respiratory infection
    "J20": (220, 0, 120, ""),  # acute bronchitis
    "A09": (200, 0, 120, ""),  # infectious gastroenteritis
    "I10": (260, 18, 120, ""),  # essential hypertension
    "I25": (1200, 40, 120, ""),  # chronic ischaemic heart disease
    "E11": (380, 30, 120, ""),  # type 2 diabetes
    "K29": (300, 0, 120, ""),  # gastritis
    "K35": (6500, 0, 120, ""),  # acute appendicitis
    "M54": (320, 18, 120, ""),  # dorsalgia
    "S52": (2800, 0, 120, ""),  # forearm fracture
    "O80": (4200, 18, 45, "F"),  # single spontaneous delivery
    "Z34": (240, 18, 45, "F"),  # supervision of normal pregnancy
    "C34": (5200, 18, 120, ""),  # lung cancer
    "C50": (4800, 18, 120, "F"),  # breast cancer
    "H25": (3600, 50, 120, ""),  # senile cataract
    "H52": (120, 0, 120, ""),  # disorders of refraction
    "Q87": (900, 0, 17, ""),  # congenital malformation syndromes (planted only)
}
DEPARTMENT_DIAGNOSES: dict[str, tuple[tuple[str, int], ...]] = {
    "Internal Medicine": (("I10", 25), ("E11", 20), ("K29", 20), ("J20", 15), ("M54", 15),
                          ("J06", 15)),
    "Surgery": (("K35", 30), ("S52", 30), ("M54", 20)),
    "Pediatrics": (("J06", 45), ("J20", 25), ("A09", 30)),
    "Obstetrics": (("Z34", 60), ("O80", 40)),
    "Cardiology": (("I10", 40), ("I25", 60)),
    "Oncology": (("C34", 55), ("C50", 45)),
    "Emergency": (("S52", 30), ("J06", 25), ("A09", 20), ("K35", 15), ("I25", 10)),
    "Ophthalmology": (("H25", 50), ("H52", 50)),
}  # fmt: skip
PLANS = (("basic", 50), ("standard", 35), ("premium", 15))
PAID_RATIO_BP = {"basic": (5000, 7000), "standard": (6500, 8500), "premium": (8000, 9500)}

PRIVACY_UNIT = {"name": "patient_id", "type": "VARCHAR", "role": "privacy_unit",
                "description": "Pseudonymous patient number, P + 6 digits"}  # fmt: skip
FACILITY_COLUMN = {"name": "facility_code", "type": "VARCHAR", "role": "join_key",
                   "description": "Facility code, F + 3 digits, shared across assets"}  # fmt: skip
FREE_PURPOSES = ("public_welfare", "public_governance")
LICENSE = "Fuzhou public data pilot licence, processing and use only"
# The last day the demo data may be used under any grant.
RETENTION_UNTIL = "2030-12-31"


@dataclass(frozen=True)
class DemoAsset:
    """One generated asset: its card (DESIGN.md section 4) and the CSV it describes."""

    card: dict[str, Any]
    csv_path: Path


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    name: str
    phone: str
    age: int
    sex: str
    district: str
    postcode: str
    home_facility: str


@dataclass(frozen=True)
class _Visit:
    patient: _Patient
    visit_date: date
    department: str
    diagnosis: str
    facility: str
    cost_cents: int


def write_demo_assets(dest: Path, *, seed: int = DEFAULT_SEED) -> list[DemoAsset]:
    """Write the demo CSVs into dest and return [visits, claims]; same seed, same bytes."""
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    patients = _plant_patients(_make_patients(rng))
    visits = _make_visits(rng, patients)
    claims = _make_claims(rng, patients, visits)
    visits_card, claims_card = _visits_card(), _claims_card()
    visits_path, claims_path = dest / VISITS_CSV, dest / CLAIMS_CSV
    _write_csv(visits_path, _header(visits_card), _visit_rows(visits))
    _write_csv(claims_path, _header(claims_card), claims)
    return [DemoAsset(visits_card, visits_path), DemoAsset(claims_card, claims_path)]


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([item for item, _ in pairs], [weight for _, weight in pairs])[0]


def _money(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def _cents(text: str) -> int:
    return int(Decimal(text) * 100)


def _make_patients(rng: random.Random) -> list[_Patient]:
    phones: set[str] = set()
    return [_make_patient(rng, number, phones) for number in range(1, PATIENT_COUNT + 1)]


def _make_patient(rng: random.Random, number: int, phones: set[str]) -> _Patient:
    sex = "F" if rng.random() < 0.52 else "M"
    low, high = _weighted(rng, [((lo, hi), w) for lo, hi, w in AGE_BANDS])
    district, _, postcodes = _weighted(rng, [(entry, entry[1]) for entry in DISTRICTS])
    return _Patient(
        patient_id=f"P{number:06d}",
        name=f"{_weighted(rng, SURNAMES)} {rng.choice(GIVEN_NAMES[sex])}",
        phone=_unique_phone(rng, phones),
        age=rng.randint(low, high),
        sex=sex,
        district=district,
        postcode=rng.choice(postcodes),
        home_facility=_weighted(rng, FACILITIES),
    )


def _unique_phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = f"{rng.choice(('13', '15', '18'))}{rng.randrange(10**9):09d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _plant_patients(patients: list[_Patient]) -> list[_Patient]:
    overrides: dict[str, dict[str, Any]] = {
        VICTIM_PATIENT_ID: {"age": 104, "sex": "M", "district": "Lianjiang", "postcode": "350500",
                            "home_facility": "F101"},
        Q87_PATIENTS[0]: {"age": 4},
        Q87_PATIENTS[1]: {"age": 9},
        POSTCODE_PATIENT: {"postcode": RARE_POSTCODE},
    }  # fmt: skip
    return [replace(p, **overrides.get(p.patient_id, {})) for p in patients]


def _planted_visit_counts() -> dict[str, int]:
    counts = {VICTIM_PATIENT_ID: 3, POSTCODE_PATIENT: 2}
    counts.update(dict.fromkeys(Q87_PATIENTS, 2))
    counts.update(dict.fromkeys(F999_PATIENTS, 2))
    return counts


def _visit_counts(rng: random.Random, patients: list[_Patient]) -> list[int]:
    planted = _planted_visit_counts()
    regular = [i for i, p in enumerate(patients) if p.patient_id not in planted]
    counts = [planted.get(p.patient_id, 1) for p in patients]
    extra = VISIT_COUNT - sum(counts)
    for index in rng.choices(regular, [1 + patients[i].age / 30 for i in regular], k=extra):
        counts[index] += 1
    return counts


def _make_visits(rng: random.Random, patients: list[_Patient]) -> list[_Visit]:
    visits: list[_Visit] = []
    for patient, count in zip(patients, _visit_counts(rng, patients), strict=True):
        if patient.patient_id == VICTIM_PATIENT_ID:
            visits.extend(_victim_visits(patient))
        elif patient.patient_id in Q87_PATIENTS:
            visits.extend(_q87_visits(rng, patient))
        else:
            visits.extend(_patient_visits(rng, patient, count))
    return sorted(visits, key=lambda v: (v.visit_date, v.patient.patient_id, v.department))


def _victim_visits(patient: _Patient) -> list[_Visit]:
    return [
        _Visit(patient, day, "Oncology", "C34", patient.home_facility, _cents(cost))
        for day, cost in zip(VICTIM_DATES, VICTIM_COSTS, strict=True)
    ]


def _q87_visits(rng: random.Random, patient: _Patient) -> list[_Visit]:
    return [
        _Visit(patient, day, "Pediatrics", "Q87", patient.home_facility, _draw_cost(rng, "Q87"))
        for day in Q87_DATES[patient.patient_id]
    ]


def _patient_visits(rng: random.Random, patient: _Patient, count: int) -> list[_Visit]:
    visits: list[_Visit] = []
    condition = _draw_condition(rng, patient)
    for index in range(count):
        if index and rng.random() >= REPEAT_CONDITION_SHARE:
            condition = _draw_condition(rng, patient)
        facility = _draw_facility(rng, patient)
        if index == 0 and patient.patient_id in F999_PATIENTS:
            facility = RARE_FACILITY
        department, diagnosis = condition
        cost = _draw_cost(rng, diagnosis)
        visits.append(_Visit(patient, _draw_date(rng), department, diagnosis, facility, cost))
    return visits


def _department_weights(age: int, sex: str) -> list[tuple[str, int]]:
    if age < 15:
        return [("Pediatrics", 60), ("Emergency", 15), ("Surgery", 8), ("Ophthalmology", 10)]
    obstetrics = 0
    if sex == "F" and 18 <= age <= 45:
        obstetrics = 25 if age <= 40 else 3
    if age < 40:
        weights = {"Cardiology": 3, "Oncology": 2, "Surgery": 14, "Emergency": 16}
    elif age < 65:
        weights = {"Cardiology": 15, "Oncology": 8, "Surgery": 12, "Emergency": 10}
    else:
        weights = {"Cardiology": 22, "Oncology": 12, "Surgery": 8, "Emergency": 10}
    weights |= {"Internal Medicine": 30, "Ophthalmology": 8 if age < 65 else 12}
    if age < 18:
        weights |= {"Cardiology": 0, "Oncology": 0}
    if obstetrics:
        weights["Obstetrics"] = obstetrics
    return [(name, weight) for name, weight in sorted(weights.items()) if weight]


def _eligible(code: str, patient: _Patient) -> bool:
    _, min_age, max_age, sex = DIAGNOSES[code]
    return min_age <= patient.age <= max_age and sex in ("", patient.sex)


def _draw_condition(rng: random.Random, patient: _Patient) -> tuple[str, str]:
    department = _weighted(rng, _department_weights(patient.age, patient.sex))
    codes = [(c, w) for c, w in DEPARTMENT_DIAGNOSES[department] if _eligible(c, patient)]
    return department, _weighted(rng, codes)


def _draw_facility(rng: random.Random, patient: _Patient) -> str:
    if rng.random() < HOME_FACILITY_SHARE:
        return patient.home_facility
    return _weighted(rng, FACILITIES)


def _draw_date(rng: random.Random) -> date:
    while True:
        day = YEAR_START + timedelta(days=rng.randrange(YEAR_DAYS))
        if day.weekday() < 5 or rng.random() < 0.5:
            return day


def _draw_cost(rng: random.Random, diagnosis: str) -> int:
    mu = math.log(DIAGNOSES[diagnosis][0])
    while True:
        cents = round(rng.lognormvariate(mu, 0.55) * 100)
        if MIN_COST_CENTS <= cents <= NORMAL_MAX_COST_CENTS:
            return cents


def _make_claims(
    rng: random.Random, patients: list[_Patient], visits: list[_Visit]
) -> list[list[str]]:
    policies = _make_policies(rng, patients)
    forced = {VICTIM_PATIENT_ID, *F999_PATIENTS}
    drafts: list[tuple[date, int, list[str]]] = []
    for order, visit in enumerate(visits):
        policy = policies.get(visit.patient.patient_id)
        if policy and (visit.patient.patient_id in forced or rng.random() < CLAIM_SHARE):
            drafts.append(_draft_claim(rng, order, visit, policy))
    drafts.sort(key=lambda draft: draft[:2])
    return [[f"C{24_000_001 + i:08d}", *row] for i, (_, _, row) in enumerate(drafts)]


def _make_policies(rng: random.Random, patients: list[_Patient]) -> dict[str, tuple[str, str]]:
    forced = {VICTIM_PATIENT_ID, *F999_PATIENTS}
    numbers: set[int] = set()
    policies: dict[str, tuple[str, str]] = {}
    for patient in patients:
        if patient.patient_id in forced or rng.random() < INSURED_SHARE:
            number = rng.randrange(10**7, 10**8)
            while number in numbers:
                number = rng.randrange(10**7, 10**8)
            numbers.add(number)
            policies[patient.patient_id] = (f"PN{number}", _weighted(rng, PLANS))
    return policies


def _draft_claim(
    rng: random.Random, order: int, visit: _Visit, policy: tuple[str, str]
) -> tuple[date, int, list[str]]:
    policy_no, plan = policy
    month = visit.visit_date.month
    if month < 12 and rng.random() < 0.2:
        month += 1
    claim_month = date(2024, month, 1)
    claimed = visit.cost_cents * rng.randint(10_000, 13_000) // 10_000
    status = _draw_status(rng, month)
    paid = claimed * rng.randint(*PAID_RATIO_BP[plan]) // 10_000 if status == "approved" else 0
    row = [visit.patient.patient_id, policy_no, plan, claim_month.isoformat(), visit.facility,
           status, _money(claimed), _money(paid)]  # fmt: skip
    return claim_month, order, row


def _draw_status(rng: random.Random, month: int) -> str:
    pending = 0.25 if month >= 11 else 0.04
    draw = rng.random()
    return "pending" if draw < pending else "rejected" if draw < pending + 0.08 else "approved"


def _visit_rows(visits: list[_Visit]) -> list[list[str]]:
    return [
        [
            f"V{2_400_001 + i:07d}", v.patient.patient_id, v.patient.name, v.patient.phone,
            str(v.patient.age), v.patient.sex, v.patient.district, v.department, v.diagnosis,
            v.visit_date.isoformat(), v.facility, v.patient.postcode, _money(v.cost_cents),
        ]
        for i, v in enumerate(visits)
    ]  # fmt: skip


def _header(card: dict[str, Any]) -> list[str]:
    return [column["name"] for column in card["columns"]]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _column(name: str, type_: str, role: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "role": role, "description": description, **extra}


def _pricing(**rates: Any) -> dict[str, Any]:
    return {**rates, "currency": "CNY", "free_purposes": list(FREE_PURPOSES)}


def _visits_card() -> dict[str, Any]:
    return {
        "id": "hospital.visits",
        "title": "Hospital visits 2024",
        "description": (
            "One row per outpatient or emergency visit at City Hospital group facilities in "
            "Fuzhou during 2024: patient demographics, department, ICD-10 diagnosis category "
            "and billed cost in CNY. Synthetic demonstration data."
        ),
        "provider": "city-hospital",
        "classification": "L3",
        "domain": "health",
        "rights": {
            "holder": "city-hospital",
            "processing_use": "city-hospital",
            "product_operation": "operator",
            "source": "HIS export 2024",
            "license": LICENSE,
            "personal_data": True,
        },
        "columns": [
            _column("visit_id", "VARCHAR", "identifier", "Visit number, V + 7 digits"),
            dict(PRIVACY_UNIT),
            _column("patient_name", "VARCHAR", "identifier", "Patient name (pinyin)"),
            _column("phone", "VARCHAR", "identifier", "Patient mobile number, 11 digits"),
            _column("age", "INTEGER", "dimension", "Age in years in 2024"),
            _column("sex", "VARCHAR", "dimension", "F or M", domain=["F", "M"]),
            _column(
                "district",
                "VARCHAR",
                "dimension",
                "Fuzhou district of residence",
                domain=[name for name, _, _ in DISTRICTS],
            ),
            _column(
                "department",
                "VARCHAR",
                "dimension",
                "Treating department",
                domain=list(DEPARTMENT_DIAGNOSES),
            ),
            _column(
                "diagnosis",
                "VARCHAR",
                "dimension",
                "ICD-10 category, e.g. I10, E11",
                domain=list(DIAGNOSES),
            ),
            _column("visit_date", "DATE", "dimension", "Date of the visit"),
            dict(FACILITY_COLUMN),
            _column("postcode", "VARCHAR", "filter_only", "Residence postcode, 6 digits"),
            _column("cost", "DECIMAL(10,2)", "measure", "Billed cost in CNY", bounds=[0, 20000]),
        ],
        "pricing": _pricing(
            per_query_minor=100,
            per_1k_rows_scanned_minor=1,
            per_cpu_second_minor=20,
            plans={"sensitive": {"per_query_minor": 300, "per_1k_rows_scanned_minor": 3}},
        ),
        "purposes": [*FREE_PURPOSES, "medical_research"],
        "retention_until": RETENTION_UNTIL,
        "min_group_size": 10,
        "stewards": ["City Hospital data office"],
        # Under differential privacy a patient counts in at most 3 groups of an answer, with
        # at most 10 visits in each (rarely more in a year); the rest of their rows are dropped.
        "privacy": {"max_groups_per_unit": 3, "max_rows_per_group": 10},
        "revenue_shares_bp": {"city-hospital": 7000, "operator": 2000, "platform": 1000},
    }


def _claims_card() -> dict[str, Any]:
    return {
        "id": "insurance.claims",
        "title": "Health insurance claims 2024",
        "description": (
            "One row per claim filed in 2024 by policyholders for treatment at Fuzhou "
            "facilities: plan, claim month, status, claimed and paid amounts in CNY. "
            "Synthetic demonstration data."
        ),
        "provider": "insurer",
        "classification": "L2",
        "domain": "finance",
        "rights": {
            "holder": "insurer",
            "processing_use": "insurer",
            "product_operation": "operator",
            "source": "Claims system export 2024",
            "license": LICENSE,
            "personal_data": True,
        },
        "columns": [
            _column("claim_id", "VARCHAR", "identifier", "Claim number, C + 8 digits"),
            dict(PRIVACY_UNIT),
            _column("policy_no", "VARCHAR", "identifier", "Policy number, PN + 8 digits"),
            _column(
                "plan",
                "VARCHAR",
                "dimension",
                "basic, standard or premium",
                domain=[name for name, _ in PLANS],
            ),
            _column("claim_month", "DATE", "dimension", "First day of the month of filing"),
            dict(FACILITY_COLUMN),
            _column(
                "status",
                "VARCHAR",
                "dimension",
                "approved, rejected or pending",
                domain=["approved", "rejected", "pending"],
            ),
            _column(
                "claimed_amount",
                "DECIMAL(10,2)",
                "measure",
                "Amount claimed in CNY",
                bounds=[0, 50000],
            ),
            _column(
                "paid_amount",
                "DECIMAL(10,2)",
                "measure",
                "Amount paid in CNY; 0 unless approved",
                bounds=[0, 50000],
            ),
        ],  # fmt: skip
        "pricing": _pricing(
            per_query_minor=200,
            per_1k_rows_scanned_minor=2,
            row_tiers=[{"above_rows": 20_000, "per_1k_rows_scanned_minor": 1}],
        ),
        "purposes": [*FREE_PURPOSES, "commercial_pricing", "actuarial_research"],
        "retention_until": RETENTION_UNTIL,
        "stewards": ["Minjiang Health Insurance data governance team"],
        "privacy": {"max_groups_per_unit": 3, "max_rows_per_group": 10},
        "revenue_shares_bp": {"insurer": 7500, "operator": 1500, "platform": 1000},
    }
