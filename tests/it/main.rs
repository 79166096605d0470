#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The integration suite: the real server on a random port, a real database (a SQLite file, or
//! a fresh PostgreSQL database when VIGIL_TEST_DATABASE_URL is set), a real HTTP client with a
//! cookie jar. No mocks.

mod access_reviews;
mod admin;
mod admin_clients;
mod admin_review;
mod admin_signins;
mod admin_users;
mod adversarial;
mod asvs;
mod audit;
mod breached;
mod cli;
mod commits;
mod conformance;
mod console_roles;
mod demo;
mod email;
mod enforcement;
mod enumeration;
mod faults;
mod hardening;
mod helpers;
mod i18n;
mod least_privilege;
mod login;
mod metrics;
mod mfa;
mod oidc;
mod outage;
mod passkeys;
mod policy;
mod races;
mod recovery;
mod registration;
mod replay;
mod retraining;
mod risk;
mod roles;
mod scim;
mod storage;
mod throttle;
mod topology;
