-- The mobile app's live SQLite database (make demo builds app.db from this script with sqlite3).
PRAGMA foreign_keys=ON;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, display_name TEXT, created_at TIMESTAMP,
  settings JSON, avatar BLOB);
CREATE INDEX users_email_lower ON users (lower(email));
INSERT INTO users VALUES
  (1042, 'Alice@Example.com', 'alice', '2026-03-01 08:15:00', '{"theme":"dark","push":true}', X'89504E47'),
  (1043, 'bob@example.org', 'bob', '2026-04-11 19:02:00', '{"theme":"light"}', NULL),
  (10420, 'malice@example.com', 'mallory', '2026-05-05 10:00:00', NULL, NULL);
CREATE TABLE devices (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), platform TEXT,
  last_seen TIMESTAMP);
CREATE INDEX devices_user ON devices (user_id);
INSERT INTO devices VALUES (1, 1042, 'ios', '2026-11-27 22:10:00'), (2, 1043, 'android', '2026-11-20 07:45:00'),
  (3, 1042, 'web', '2026-11-28 09:30:00'), (4, 10420, 'ios', '2026-11-01 12:00:00');
-- Invoices are retained after the account is erased: they keep the user id without a foreign key.
CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, amount NUMERIC, bought_at TIMESTAMP);
INSERT INTO purchases VALUES (501, 1042, 4.99, '2026-10-02 18:00:00'), (502, 1043, 9.99, '2026-10-03 11:20:00');
CREATE TABLE feedback (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO feedback VALUES (1, 'Great app! -- sent by alice@example.com'),
  (2, 'malice@example.com says the login is slow'), (3, 'Please add a dark mode');
