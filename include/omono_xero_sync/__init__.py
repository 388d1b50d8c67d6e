"""The omono-xero-sync pipeline: Omono records from PostgreSQL, checked, pushed to Xero, logged per record.

One module per concern: settings, db (connections and migrations), entities, extract, expectations,
transform, xero_api (the SDK wired safely), reference (Xero's reference data and readiness), push, sync_log,
summary. DAG files in `dags/` only wire these together."""
