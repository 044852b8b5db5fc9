//! Code that runs on the sensor node, a microcontroller next to the sensors.
//!
//! This crate is `#![no_std]` and allocation-free so that it can run on a
//! Cortex-M class MCU; it is unit-tested on the host like any other crate.
//! For now it defines the [`frame::SampleFrame`] a node sends to its gateway.
//! The sensor drivers (accelerometer over SPI, temperature over I2C), the
//! sampling loop and the byte-stuffed wire codec build on it.

#![cfg_attr(not(test), no_std)]

pub mod frame;

pub use frame::{ChannelKind, FrameError, FrameHeader, MAX_SAMPLES_PER_FRAME, SampleFrame};
