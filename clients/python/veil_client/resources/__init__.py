"""The client's namespaces: one class per kind of thing Veil holds."""
