"""The rare people planted in the demo data: each one a query could isolate, so attack tests
know exactly whom and what an answer must not reveal."""

from __future__ import annotations

from datetime import date
from typing import Any

VICTIM_PATIENT_ID = "P000042"
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
