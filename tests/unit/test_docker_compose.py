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
    assert "./include/omono_xero_sync:/opt/airflow/include/omono_xero_sync" in common["volumes"]
    assert common["environment"]["PYTHONPATH"] == "/opt/airflow"
    assert ":?" in common["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]        # refuses to start without one
    assert "${XERO_CLIENT_SECRET" in common["environment"]["AIRFLOW_CONN_XERO_DEFAULT"]


def test_the_image_and_the_airflow_services_get_production_code_only(compose: dict) -> None:
    """The demo, the data generator, the connect command and the emulator are for developers: not shipped."""
    mounted = " ".join(compose["x-airflow-common"]["volumes"])
    assert "include/commands" not in mounted and "xero_emulator" not in mounted and "./include:" not in mounted
    assert any("include/xero_emulator" in v for v in compose["services"]["xero-emulator"]["volumes"])
    copied = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    assert set(copied) >= {"dags", "plugins", "include/omono_xero_sync"}
    assert not any(path.startswith(("include/commands", "include/xero_emulator", "tests", "include ")) or path == "."
                   for path in copied)
    allowed = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert (ROOT / ".dockerignore").read_text().splitlines()[1] == "*"
    assert not any("commands" in line or "emulator" in line or "tests" in line for line in allowed)


def test_docker_compose_accepts_the_file_where_the_docker_client_has_compose() -> None:
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker client here has no 'compose' command; only the YAML structure was checked")
    env = {**os.environ, "AIRFLOW_JWT_SECRET": "x" * 64}
    result = subprocess.run([docker, "compose", "config", "--quiet"], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
