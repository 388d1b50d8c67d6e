"""The integration's pages inside the Airflow UI: sync log, record detail, mappings, readiness, options."""
