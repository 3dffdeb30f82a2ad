"""The demo assets' cards (modelled in sandbox/cards.py): columns with their roles, pricing,
licence, retention, privacy bounds and public domains."""

from __future__ import annotations

from typing import Any

from sandbox.demo.vocabulary import DEPARTMENT_DIAGNOSES, DIAGNOSES, DISTRICTS, PLANS

PRIVACY_UNIT = {"name": "patient_id", "type": "VARCHAR", "role": "privacy_unit",
                "description": "Pseudonymous patient number, P + 6 digits"}  # fmt: skip
FACILITY_COLUMN = {"name": "facility_code", "type": "VARCHAR", "role": "join_key",
                   "description": "Facility code, F + 3 digits, shared across assets"}  # fmt: skip
FREE_PURPOSES = ("public_welfare", "public_governance")
LICENSE = "Fuzhou public data pilot licence, processing and use only"
# The last day the demo data may be used under any grant.
RETENTION_UNTIL = "2030-12-31"


def _column(name: str, type_: str, role: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "role": role, "description": description, **extra}


def _pricing(**rates: Any) -> dict[str, Any]:
    return {**rates, "currency": "CNY", "free_purposes": list(FREE_PURPOSES)}


def visits_card() -> dict[str, Any]:
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


def claims_card() -> dict[str, Any]:
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
