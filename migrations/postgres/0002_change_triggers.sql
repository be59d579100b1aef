-- Changes made to the tables directly (an operator's SQL, another tool) reach
-- every gateway too, not only those made through Portcullis. pg_notify folds
-- identical notices within one transaction, so a rewrite of many rows of one
-- account is one notice.
CREATE FUNCTION portcullis_account_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('portcullis_accounts', OLD.name);
    ELSE
        PERFORM pg_notify('portcullis_accounts', NEW.name);
        IF TG_OP = 'UPDATE' AND OLD.name <> NEW.name THEN
            PERFORM pg_notify('portcullis_accounts', OLD.name);
        END IF;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER accounts_changed AFTER INSERT OR UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION portcullis_account_changed();
CREATE TRIGGER backup_codes_changed AFTER INSERT OR UPDATE OR DELETE ON backup_codes
    FOR EACH ROW EXECUTE FUNCTION portcullis_account_changed();

-- Only the four statuses (the gateway also treats anything else as disabled).
ALTER TABLE accounts ADD CONSTRAINT accounts_status_known
    CHECK (status IN ('active', 'disabled', 'suspended', 'closed'));
