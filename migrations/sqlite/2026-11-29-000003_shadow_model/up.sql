-- A shadow model (a candidate risk model scored beside the live one on every sign-in, never
-- enforced): what it would have said, as JSON {"model", "score", "level", "decision"}; null when
-- no shadow model was set. The live and shadow models themselves are the `risk_state` row
-- `models`, like the stored policy.
ALTER TABLE signins ADD COLUMN shadow TEXT;
