SELECT 'it''s ?' || "q""?" -- ? INTEGER
/* BLOB ? */ FROM t