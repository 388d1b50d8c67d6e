"""Importable code of the omono-xero-sync Airflow project (kept outside `dags/` so DAG files stay thin)."""
