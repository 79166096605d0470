-- Access reviews: a campaign asks reviewers to keep or remove each item in its scope by a
-- deadline; each item carries the miners' recommendation and its evidence (src/access/).
CREATE TABLE access_campaigns (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- client_roles | group_members | privileged | dormant | account_privileged
    scope TEXT NOT NULL,
    -- the client id, group name or user id the scope names (NULL for privileged, dormant)
    scope_target TEXT,
    -- the console role that may decide besides admin: admin | helpdesk
    reviewers TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    -- what closing does to undecided items: keep | remove
    undecided TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    closed_at BIGINT
);

-- One (user, grant), (user, group membership) or (user account) to decide.
CREATE TABLE access_review_items (
    id TEXT PRIMARY KEY NOT NULL,
    campaign_id TEXT NOT NULL REFERENCES access_campaigns(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    client_id TEXT,
    role TEXT,
    group_name TEXT,
    privileged BOOLEAN NOT NULL DEFAULT FALSE,
    recommendation TEXT NOT NULL,
    evidence TEXT NOT NULL,
    decision TEXT,
    decided_by TEXT,
    decided_at BIGINT,
    -- whether the decision followed the recommendation
    followed BOOLEAN,
    -- set when a removal was carried out (or found already done)
    applied BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX access_review_items_campaign ON access_review_items (campaign_id);
