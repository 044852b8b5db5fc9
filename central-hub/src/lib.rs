//! The control-room hub of the predictive-maintenance system.
//!
//! [`ingest`] takes every gateway's messages from the broker and hands them
//! to the [`ledger`], which applies each one to the durable [`store`] in one
//! commit (then ingest acknowledges it): [`assets`] with their health index,
//! and inspection [`work_orders`]. The [`api`] serves that state as JSON and
//! as the operators' page. [`hub`] starts and stops these as one unit;
//! [`broker`] embeds an MQTT broker; [`demo`] runs broker, hub and simulated
//! gateways together.

pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod broker;
pub mod config;
pub mod demo;
pub mod health;
pub mod hub;
pub mod ingest;
pub mod ledger;
pub mod ota;
pub mod registry;
pub mod risk;
pub mod rollout;
pub mod scheduler;
pub mod work_orders;
