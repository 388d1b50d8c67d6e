-- A login for omono-xero-sync on a production Omono database: it reads Omono's tables and its change log,
-- and writes only the customers' balances table that Omono's credit-limit check reads. Run as the owner of
-- schema omono after change_log.sql, with the password set by your secret store:
--   psql "$OMONO_ADMIN_URL" -v password="'…'" -f readonly_role.sql
CREATE ROLE omono_xero_sync LOGIN PASSWORD :password;
GRANT USAGE ON SCHEMA omono TO omono_xero_sync;
GRANT SELECT ON ALL TABLES IN SCHEMA omono TO omono_xero_sync;
ALTER DEFAULT PRIVILEGES IN SCHEMA omono GRANT SELECT ON TABLES TO omono_xero_sync;
GRANT INSERT, UPDATE ON omono.customer_balances TO omono_xero_sync;
-- The integration's own state lives in schema xero_sync (created by the sync's migrations), owned by this role:
CREATE SCHEMA IF NOT EXISTS xero_sync AUTHORIZATION omono_xero_sync;
