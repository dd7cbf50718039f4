  SELECT
	name ,id FROM  customers -- who
WHERE id=-1 /* the first */ ;