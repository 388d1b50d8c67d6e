# Airflow image with this project's pinned dependencies (used by docker-compose.yaml).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt requirements.lock /opt/omono-xero-sync/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/omono-xero-sync/requirements.txt \
        -c /opt/omono-xero-sync/requirements.lock
ENV PYTHONPATH=/opt/airflow
