-- EVENT_WINDOW, STATECOUNT, STATEDURATION
CREATE DATABASE q19;
USE q19;
CREATE STABLE m (ts TIMESTAMP, v INT, f DOUBLE) TAGS (site VARCHAR(8));
INSERT INTO a USING m TAGS ('east') VALUES ('2024-01-01 00:00:00.000', 1, 1.0) ('2024-01-01 00:00:01.000', 5, 2.0) ('2024-01-01 00:00:02.000', 6, NULL) ('2024-01-01 00:00:03.000', 2, 4.0) ('2024-01-01 00:00:04.000', 7, 5.0) ('2024-01-01 00:00:05.000', 1, 6.0) ('2024-01-01 00:00:06.000', 8, 7.0) ('2024-01-01 00:00:07.000', 9, 8.0);
INSERT INTO b USING m TAGS ('west') VALUES ('2024-01-01 00:00:00.500', 6, 1.0) ('2024-01-01 00:00:01.500', 3, 2.0) ('2024-01-01 00:00:02.500', 7, 3.0) ('2024-01-01 00:00:03.500', 2, 4.0);
SELECT _wstart, _wend, _wduration, count(*), sum(v) FROM a EVENT_WINDOW START WITH v > 4 END WITH v < 3;
SELECT _wstart, _wend, count(*) FROM a EVENT_WINDOW START WITH v > 4 END WITH v > 4;
SELECT _wstart, count(*), first(v), last(v) FROM a EVENT_WINDOW START WITH f >= 2 END WITH f >= 5;
SELECT tbname, _wstart, _wend, count(*), max(v) FROM m PARTITION BY tbname EVENT_WINDOW START WITH v > 4 END WITH v < 3 ORDER BY tbname, _wstart;
SELECT _wstart, count(*) FROM m EVENT_WINDOW START WITH v > 4 END WITH v < 3;
SELECT _wstart, count(*) FROM a WHERE ts >= '2024-01-01 00:00:03.000' EVENT_WINDOW START WITH v > 4 END WITH v = 1;
SELECT _wstart, count(*) FROM a EVENT_WINDOW START WITH v > 100 END WITH v < 3;
SELECT _wstart, avg(v) FROM a EVENT_WINDOW START WITH v > 4 END WITH v < 3 HAVING avg(v) > 4.1;
-- STATECOUNT / STATEDURATION
SELECT ts, v, statecount(v, 'GT', 4) FROM a;
SELECT ts, v, statecount(v, 'le', 5) FROM a;
SELECT ts, f, statecount(f, 'GE', 2.0) FROM a;
SELECT ts, v, stateduration(v, 'GT', 4) FROM a;
SELECT ts, v, stateduration(v, 'GT', 4, 1s) FROM a;
SELECT tbname, ts, statecount(v, 'GT', 4) FROM m PARTITION BY tbname;
SELECT statecount(v, 'XX', 4) FROM a;
SELECT statecount(v, 'GT') FROM a;
SELECT statecount(v, 'GT', 'x') FROM a;
SELECT stateduration(v, 'GT', 4, 1n) FROM a;
SELECT _wstart, statecount(v, 'GT', 4) FROM a INTERVAL(1s);
DROP DATABASE q19;
