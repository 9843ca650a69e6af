-- INSERT in all its forms, overwrite semantics and errors
CREATE DATABASE idb KEEP 36500;
USE idb;
CREATE STABLE meters (ts TIMESTAMP, current FLOAT, voltage INT, phase FLOAT) TAGS (groupid INT, location VARCHAR(24));
CREATE TABLE d1 USING meters TAGS (1, 'SF');
INSERT INTO d1 VALUES ('2024-01-01 00:00:00.000', 10.3, 219, 0.31);
INSERT INTO d1 VALUES ('2024-01-01 00:00:01.000', 10.5, 220, 0.32) ('2024-01-01 00:00:02.000', 10.7, 221, 0.33) (1704067203000, 10.9, 222, 0.34);
INSERT INTO d1 (ts, voltage) VALUES ('2024-01-01 00:00:04.000', 230);
INSERT INTO d1 (voltage, ts, current) VALUES (231, '2024-01-01 00:00:05.000', 9.5);
SELECT * FROM d1;
-- several tables in one statement, with auto-create
INSERT INTO d2 USING meters TAGS (2, 'LA') VALUES ('2024-01-01 00:00:00.000', 1.5, 100, 0.1) d3 USING meters (location, groupid) TAGS ('NY', 3) (ts, current) VALUES ('2024-01-01 00:00:00.000', 2.5) d1 VALUES ('2024-01-01 00:00:06.000', 11.1, 223, 0.35);
SELECT tbname, ts, current, voltage, phase, groupid, location FROM meters ORDER BY tbname, ts;
-- the super-table form
INSERT INTO meters (tbname, ts, current, voltage, phase, groupid, location) VALUES ('d4', '2024-01-01 00:00:00.000', 4.5, 200, 0.5, 4, 'SJ') ('d4', '2024-01-01 00:00:01.000', 4.6, 201, 0.5, 4, 'SJ') ('d5', '2024-01-01 00:00:00.000', 5.5, 202, 0.6, 5, 'SD');
INSERT INTO meters (tbname, ts, voltage) VALUES ('d1', '2024-01-01 00:00:07.000', 224);
SELECT tbname, ts, current, voltage, groupid, location FROM meters WHERE groupid >= 4 ORDER BY tbname, ts;
SELECT count(*) FROM d1;
-- duplicate timestamps overwrite only the supplied columns; explicit NULL overwrites
INSERT INTO d1 (ts, current) VALUES ('2024-01-01 00:00:00.000', 99.5);
INSERT INTO d1 (ts, phase) VALUES ('2024-01-01 00:00:01.000', NULL);
SELECT * FROM d1 WHERE ts <= '2024-01-01 00:00:01.000';
-- out of order rows are accepted and read back in time order
INSERT INTO d2 VALUES ('2024-01-01 00:00:09.000', 9, 9, 0.9) ('2024-01-01 00:00:03.000', 3, 3, 0.3) ('2024-01-01 00:00:06.000', 6, 6, 0.6);
SELECT ts, current, voltage FROM d2;
-- normal table, NULL and NOW arithmetic (checked by count only: NOW is not deterministic)
CREATE TABLE nt (ts TIMESTAMP, v INT, s VARCHAR(8));
INSERT INTO nt VALUES (NOW, 1, 'a') (NOW + 1s, NULL, NULL) (NOW - 1h, 3, 'c') (NOW() - 2d, 4, 'd');
SELECT count(*), count(v), count(s) FROM nt;
SELECT count(*) FROM nt WHERE ts > NOW - 1d;
-- errors: each names what is wrong
INSERT INTO nosuch VALUES ('2024-01-01 00:00:00.000', 1);
INSERT INTO d1 VALUES ('2024-01-01 00:00:00.000', 1, 2);
INSERT INTO d1 VALUES ('2024-01-01 00:00:00.000', 1, 2, 3, 4);
INSERT INTO d1 (ts, nosuch) VALUES ('2024-01-01 00:00:00.000', 1);
INSERT INTO d1 (current) VALUES (1.5);
INSERT INTO d1 VALUES (NULL, 1, 2, 3);
INSERT INTO d1 VALUES ('2024-01-01 00:00:00.000', 1, 3000000000, 3);
INSERT INTO d1 VALUES ('2024-01-01 00:00:00.000', 1, 'abc', 3);
INSERT INTO d1 VALUES ('2024-13-45 00:00:00.000', 1, 2, 3);
INSERT INTO nt VALUES ('2024-01-01 00:00:00.000', 1, 'too long a string');
INSERT INTO nt VALUES ('1900-01-01 00:00:00.000', 1, 'old');
INSERT INTO d9 USING meters TAGS (1) VALUES ('2024-01-01 00:00:00.000', 1, 2, 3);
INSERT INTO d9 USING nostable TAGS (1) VALUES ('2024-01-01 00:00:00.000', 1, 2, 3);
INSERT INTO meters VALUES ('2024-01-01 00:00:00.000', 1, 2, 3);
INSERT INTO meters (ts, current) VALUES ('2024-01-01 00:00:00.000', 1);
INSERT INTO d1 VALUES ('2024-01-01 00:00:00.000', 1, 2, 3;
INSERT INTO d1 VALUES;
-- a failed statement writes nothing
SELECT count(*) FROM meters;
DROP DATABASE idb;
