-- Changes made to the tables directly (an operator's SQL, another tool) reach
-- every gateway too: they land in the change feed the gateways poll.
CREATE TRIGGER accounts_inserted AFTER INSERT ON accounts BEGIN
    INSERT INTO account_changes (name, at) VALUES (NEW.name, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER accounts_updated AFTER UPDATE ON accounts BEGIN
    INSERT INTO account_changes (name, at) VALUES (NEW.name, CAST(strftime('%s', 'now') AS INTEGER));
    INSERT INTO account_changes (name, at) SELECT OLD.name, CAST(strftime('%s', 'now') AS INTEGER) WHERE OLD.name <> NEW.name;
END;
CREATE TRIGGER accounts_deleted AFTER DELETE ON accounts BEGIN
    INSERT INTO account_changes (name, at) VALUES (OLD.name, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER backup_codes_deleted AFTER DELETE ON backup_codes BEGIN
    INSERT INTO account_changes (name, at) VALUES (OLD.name, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER backup_codes_inserted AFTER INSERT ON backup_codes BEGIN
    INSERT INTO account_changes (name, at) VALUES (NEW.name, CAST(strftime('%s', 'now') AS INTEGER));
END;
