# %% [markdown]
# # First steps with the Veil Python client
#
# Run it cell by cell in an editor that reads `# %%` cells, or whole with `python`. It reads
# `VEIL_URL` (default `http://127.0.0.1:8000`), `VEIL_API_KEY` (a developer's key, e.g. the
# demo analyst's from `.veil/demo-credentials.json`) and `VEIL_LEDGER_PUBLIC_KEY`, the
# ledger's public key as the operator published it (for the demo: `veil ledger public-key`).

# %% Connect
import os

from veil_client import Veil

veil = Veil(os.environ.get("VEIL_URL", "http://127.0.0.1:8000"), os.environ["VEIL_API_KEY"])

# %% List the assets: cards only, never data
for asset in veil.assets.list():
    print(asset.id, "-", asset.title, f"({asset.row_count} rows, {asset.classification})")

# %% Ask a question
result = veil.queries.run(
    "SELECT district, COUNT(DISTINCT patient_id) AS patients, AVG(cost) AS avg_cost "
    "FROM hospital.visits GROUP BY district ORDER BY district"
)
for note in result.notes:
    print("note:", note)
print("cost:", result.cost.amount_minor, result.cost.currency)

# %% The answer as a DataFrame (pip install 'veil-client[pandas]')
frame = result.to_pandas()
print(frame)

# %% Check the receipt: the signed checkpoint under the pinned key, then the inclusion proof
verified = veil.ledger.verify_receipt(
    result.receipt, public_key=os.environ["VEIL_LEDGER_PUBLIC_KEY"]
)
print(f"receipt {verified.ledger_index} is in the log of {verified.tree_size} entries")

# %% Run a job beside the data and wait for it
job = veil.jobs.submit(
    'answer = sql("SELECT district, COUNT(*) AS visits FROM hospital.visits GROUP BY district")\n'
    'publish("by_district", [["district", "label"], ["visits", "count"]], answer["rows"])\n'
)
record = job.wait(progress=True)
if record.outputs:
    for name, table in record.outputs.items():
        print(name, table.columns, table.rows[:3])

# %%
veil.close()
