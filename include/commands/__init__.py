"""Commands for developers and operators at a shell: `make demo`/`make airflow` (demo), the demo data generator
(demo_data), `make connect` (connect) and `make reconcile` (reconcile). Not shipped in the Docker image: the
pipeline package, the DAG and the UI plugin never import them (tests/unit/test_package_rooms.py)."""
