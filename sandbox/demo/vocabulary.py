"""The demo's world: how many patients and visits, its districts, facilities, diagnoses and
insurance plans, and how often each occurs."""

from __future__ import annotations

from datetime import date

PATIENT_COUNT = 8000
VISIT_COUNT = 30_000
INSURED_SHARE = 0.70
CLAIM_SHARE = 0.95
YEAR_START = date(2024, 1, 1)
YEAR_DAYS = 366
NORMAL_MAX_AGE = 99
NORMAL_MAX_COST_CENTS = 15_000_00
MIN_COST_CENTS = 10_00

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
