//! vigil — an OpenID Connect identity provider that scores every sign-in for risk.
//! The module map and the data flow of a sign-in are in docs/ARCHITECTURE.md.

pub mod access;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod demo;
pub mod domain;
pub mod flow;
pub mod mail;
pub mod net;
pub mod oidc;
pub mod risk;
pub mod scim;
pub mod sealing;
pub mod store;
pub mod telemetry;
pub mod web;
