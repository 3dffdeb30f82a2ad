"""Asset cards as DCAT (JSON-LD): datasets of a catalogue other data platforms can read."""

from __future__ import annotations

from sandbox.store import DestroyedAsset, StoredAsset

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "veil": "urn:veil:terms#",
}


def dataset(entry: StoredAsset | DestroyedAsset, lifecycle: str) -> dict:
    """One card as a `dcat:Dataset`: basic, rights, usage and management information.

    Standard DCAT and Dublin Core terms carry what they can; Veil's own terms (`veil:`) carry
    the separated rights, column roles, purposes, pricing and shares. No data, ever.
    """
    card, rights = entry.card, entry.card.rights
    return {
        "@id": f"urn:veil:asset:{card.id}",
        "@type": "dcat:Dataset",
        # basic information
        "dct:identifier": card.id,
        "dct:title": card.title,
        "dct:description": card.description,
        "dcat:theme": card.domain,
        "dct:issued": {"@value": entry.registered_at, "@type": "xsd:dateTime"},
        "dcat:version": str(entry.version),
        "veil:rowCount": entry.row_count,
        # rights information
        "dct:publisher": card.provider,
        "dct:rightsHolder": rights.holder,
        "veil:processingUseRights": rights.processing_use or rights.holder,
        "veil:productOperationRights": rights.product_operation or rights.holder,
        "dct:source": rights.source,
        "dct:license": rights.license,
        "veil:personalData": rights.personal_data,
        # usage information
        "veil:columns": [
            {"veil:name": c.name, "veil:type": c.type, "veil:role": c.role.value}
            for c in card.columns
        ],
        "veil:purposes": card.purposes,
        "veil:pricing": card.pricing.model_dump(mode="json"),
        "veil:revenueSharesBp": card.revenue_shares_bp,
        "veil:minGroupSize": card.min_group_size,
        "dcat:distribution": [
            {
                "@type": "dcat:Distribution",
                "dct:description": "Aggregate SQL and checked jobs through the Veil API only",
                "dcat:accessService": {
                    "@type": "dcat:DataService",
                    "dcat:endpointDescription": "/openapi.json",
                },
            }
        ],
        # management information
        "dct:accessRights": card.classification,
        "dcat:contactPoint": card.stewards,
        "veil:lifecycle": lifecycle,
        "veil:retentionUntil": card.retention_until.isoformat() if card.retention_until else None,
    }


def catalog(datasets: list[dict]) -> dict:
    return {
        "@context": CONTEXT,
        "@id": "urn:veil:catalog",
        "@type": "dcat:Catalog",
        "dct:title": "Veil data assets",
        "dcat:dataset": datasets,
    }
