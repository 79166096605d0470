ALTER TABLE signins DROP COLUMN shadow;
