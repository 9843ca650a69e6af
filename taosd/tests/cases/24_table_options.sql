-- ALTER TABLE / STABLE ... TTL n / COMMENT 'c': kept, shown by SHOW CREATE TABLE and ins_tables / ins_stables
CREATE DATABASE topt;
USE topt;
CREATE STABLE st (ts TIMESTAMP, v INT) TAGS (g INT) COMMENT 'first';
CREATE TABLE c1 USING st TAGS (1) TTL 5;
CREATE TABLE c2 USING st TAGS (2);
CREATE TABLE n1 (ts TIMESTAMP, v INT) COMMENT 'plain';
SELECT table_name, ttl, table_comment FROM information_schema.ins_tables WHERE db_name = 'topt' ORDER BY table_name;
ALTER TABLE c1 TTL 30;
ALTER TABLE c2 COMMENT 'second child';
ALTER TABLE c2 TTL 7 COMMENT 'both';
ALTER TABLE n1 TTL 100;
ALTER TABLE n1 COMMENT 'it''s changed';
ALTER STABLE st COMMENT 'renamed comment';
SELECT table_name, ttl, table_comment FROM information_schema.ins_tables WHERE db_name = 'topt' ORDER BY table_name;
SELECT stable_name, table_comment FROM information_schema.ins_stables WHERE db_name = 'topt';
SHOW CREATE TABLE c1;
SHOW CREATE TABLE c2;
SHOW CREATE TABLE n1;
SHOW CREATE STABLE st;
-- TTL 0 turns expiry off again
ALTER TABLE c1 TTL 0;
SELECT table_name, ttl FROM information_schema.ins_tables WHERE table_name = 'c1';
-- errors
ALTER TABLE c1 TTL -1;
ALTER TABLE c1 TTL 2147483648;
ALTER STABLE st TTL 3;
ALTER TABLE nosuch TTL 3;
DROP DATABASE topt;
