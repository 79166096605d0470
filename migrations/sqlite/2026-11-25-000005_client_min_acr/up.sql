-- A client's floor of assurance: vigil never issues it a token with a lower acr.
ALTER TABLE clients ADD COLUMN min_acr TEXT;
