"""docker-compose.yaml follows the official Airflow 3 pattern with this project's pieces in it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_the_official_components_run_with_the_local_executor_by_default(compose: dict) -> None:
    services = compose["services"]
    commands = {name: s.get("command") for name, s in services.items()}
    assert {commands[n] for n in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                                  "airflow-triggerer")} == {"api-server", "scheduler", "dag-processor", "triggerer"}
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    init = services["airflow-init"]["command"][0]                    # the metadata DB, then the Xero tasks' pool
    assert init.startswith("airflow db migrate && ") and "airflow pools set omono_xero_api 1 " in init


def test_celery_and_the_emulator_are_opt_in_profiles(compose: dict) -> None:
    services = compose["services"]
    assert services["redis"]["profiles"] == ["celery"] and services["airflow-worker"]["profiles"] == ["celery"]
    assert services["xero-emulator"]["profiles"] == ["emulator"]
    assert "include.xero_emulator" in services["xero-emulator"]["command"]


def test_project_code_is_mounted_and_importable_and_secrets_come_from_the_environment(compose: dict) -> None:
    common = compose["x-airflow-common"]
    assert "./include:/opt/airflow/include" in common["volumes"]
    assert common["environment"]["PYTHONPATH"] == "/opt/airflow"
    assert ":?" in common["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]        # refuses to start without one
    assert "${XERO_CLIENT_SECRET" in common["environment"]["AIRFLOW_CONN_XERO_DEFAULT"]


def test_docker_compose_accepts_the_file_where_the_docker_client_has_compose() -> None:
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker client here has no 'compose' command; only the YAML structure was checked")
    env = {**os.environ, "AIRFLOW_JWT_SECRET": "x" * 64}
    result = subprocess.run([docker, "compose", "config", "--quiet"], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
