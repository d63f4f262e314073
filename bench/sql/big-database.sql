-- A database with many tables, for the maintenance routes at scale:
-- 10,000 tables public.t00001 .. public.t10000, each with a primary key
-- (so 10,000 indexes, and a TOAST table for the text column) and 20 rows,
-- then ANALYZE, so that every bloat estimate can be made.
--
-- Run it in an empty database, outside a transaction block (psql's default):
--   createdb big && psql -X -v ON_ERROR_STOP=1 -d big -f bench/sql/big-database.sql
-- The DO block commits every 500 tables: creating all of them in one
-- transaction would hold more locks than the default lock table has room for.
-- The statements are separated by blank lines and hold none, so a program
-- can run them one by one (the end-to-end test does).

DO $$
DECLARE
  n constant int := 10000;
BEGIN
  FOR i IN 1..n LOOP
    EXECUTE format(
      'CREATE TABLE public.%I (id int PRIMARY KEY, label text NOT NULL, created date NOT NULL)',
      'big_' || lpad(i::text, 5, '0'));
    EXECUTE format(
      'INSERT INTO public.%I SELECT g, md5(g::text), date ''2026-01-01'' + g FROM generate_series(1, 20) AS g',
      'big_' || lpad(i::text, 5, '0'));
    IF i % 500 = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END
$$;

ANALYZE;
