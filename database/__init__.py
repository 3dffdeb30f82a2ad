"""What the control store and the ledger share about their SQL databases."""
