"""The disclosure report replayed from entries: counts per asset, and withholding."""

from ledger import disclose


def query(principal: str, assets: list[str], amounts: dict[str, int], **extra) -> dict:
    cost = {"amount_minor": sum(amounts.values()), "currency": "CNY", "assets": amounts}
    return {"type": "query", "outcome": "released", "principal": principal, "assets": assets,
            "grant_id": f"g_{principal}", "cost": cost, "at": "2026-11-05T00:00:00Z", **extra}  # fmt: skip


ENTRIES = list(
    enumerate(
        [
            query("a", ["h.visits"], {"h.visits": 100}),
            query("b", ["h.visits"], {"h.visits": 100}),
            query("c", ["h.visits", "i.claims"], {"h.visits": 60, "i.claims": 40}),
            query("c", ["h.visits"], {"h.visits": 0}),
            query("d", ["i.claims"], {"i.claims": 7}),
            query("e", ["h.visits"], {"h.visits": 5}, outcome="denied"),
            query("f", ["h.visits"], {"h.visits": 5}, at="2026-10-31T23:59:59Z"),
            (
                {
                    "type": "query",
                    "outcome": "released",
                    "principal": "g",
                    "assets": ["x.old"],
                    "cost": {"amount_minor": 9, "currency": "CNY"},
                    "at": "2026-11-01T00:00:00Z",
                }
            ),  # fmt: skip
        ]
    )
)


def test_counts_per_asset_and_withholding_below_three_developers() -> None:
    rows = disclose(ENTRIES, "2026-11").report()
    assert rows == [
        {"asset": "h.visits", "withheld": False, "grants": 3, "developers": 3, "queries": 4,
         "jobs": 0, "revenue_minor": {"CNY": 260}},
        {"asset": "i.claims", "withheld": True},
        {"asset": "x.old", "withheld": True},
    ]  # fmt: skip


def test_old_single_asset_entries_count_their_whole_cost() -> None:
    rows = disclose(ENTRIES, "2026-11").report(min_developers=1)
    assert next(r for r in rows if r["asset"] == "x.old")["revenue_minor"] == {"CNY": 9}


def test_no_figure_names_a_developer() -> None:
    text = repr(disclose(ENTRIES, "2026-11").report(min_developers=1))
    assert not any(f"'{name}'" in text for name in "abcdefg")
