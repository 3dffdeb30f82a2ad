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

from sandbox.demo.cards import claims_card, visits_card
from sandbox.demo.planted import (
    F999_PATIENTS,
    PLANTED_RARITIES,
    POSTCODE_PATIENT,
    Q87_DATES,
    Q87_PATIENTS,
    RARE_FACILITY,
    RARE_POSTCODE,
    VICTIM_COSTS,
    VICTIM_DATES,
    VICTIM_PATIENT_ID,
)
from sandbox.demo.vocabulary import (
    AGE_BANDS,
    CLAIM_SHARE,
    DEPARTMENT_DIAGNOSES,
    DIAGNOSES,
    DISTRICTS,
    FACILITIES,
    GIVEN_NAMES,
    HOME_FACILITY_SHARE,
    INSURED_SHARE,
    MIN_COST_CENTS,
    NORMAL_MAX_COST_CENTS,
    PAID_RATIO_BP,
    PATIENT_COUNT,
    PLANS,
    REPEAT_CONDITION_SHARE,
    SURNAMES,
    VISIT_COUNT,
    YEAR_DAYS,
    YEAR_START,
)

DEFAULT_SEED = 20261122

VISITS_CSV = "hospital.visits.csv"
CLAIMS_CSV = "insurance.claims.csv"


@dataclass(frozen=True)
class DemoAsset:
    """One generated asset: its card (sandbox/cards.py) and the CSV it describes."""

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
    visits_described, claims_described = visits_card(), claims_card()
    visits_path, claims_path = dest / VISITS_CSV, dest / CLAIMS_CSV
    _write_csv(visits_path, _header(visits_described), _visit_rows(visits))
    _write_csv(claims_path, _header(claims_described), claims)
    return [DemoAsset(visits_described, visits_path), DemoAsset(claims_described, claims_path)]


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


__all__ = ["PLANTED_RARITIES", "VICTIM_PATIENT_ID", "DemoAsset", "write_demo_assets"]
