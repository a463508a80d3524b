-- Scans from the web console go through the same engine as handheld scans,
-- which keys every scan event by device. Each user who scans in the console
-- gets one device row of their own (created on first scan, with a key nobody
-- holds); this column ties that row to its user.
ALTER TABLE devices ADD COLUMN console_user_id uuid REFERENCES users (id);
ALTER TABLE devices ADD CONSTRAINT devices_console_user_id_key UNIQUE (console_user_id);
