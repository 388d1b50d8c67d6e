-- The bundled Omono database for docker-compose (a real deployment points OMONO_DB_URL at Omono's own).
CREATE USER omono WITH PASSWORD 'omono';
CREATE DATABASE omono OWNER omono;
