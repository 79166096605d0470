//! vigil — an OpenID Connect identity provider that scores every sign-in for risk.
//! The module map and the data flow of a sign-in are in ARCHITECTURE.md (docs/).

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;
pub mod flow;
pub mod risk;
pub mod store;
pub mod web;
