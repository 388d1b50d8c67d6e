# Airflow image with this project's pinned dependencies and its production code (used by docker-compose.yaml).
# It ships the DAG, the UI plugin and the pipeline package only: the demo, the data generator, the connect command
# (include/commands) and the Xero emulator stay out (see .dockerignore); the emulator's profile mounts its own room.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt requirements.lock /opt/omono-xero-sync/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/omono-xero-sync/requirements.txt \
        -c /opt/omono-xero-sync/requirements.lock
COPY dags /opt/airflow/dags
COPY plugins /opt/airflow/plugins
COPY include/__init__.py /opt/airflow/include/__init__.py
COPY include/omono_xero_sync /opt/airflow/include/omono_xero_sync
ENV PYTHONPATH=/opt/airflow
