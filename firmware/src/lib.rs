//! Code that runs on the sensor node, a microcontroller next to the sensors.
//!
//! This crate is `#![no_std]` and allocation-free so that it runs on a
//! Cortex-M class MCU; it is unit-tested on the host like any other crate,
//! and the gateway uses the same [`codec`] to read what nodes send.
//!
//! - [`adxl355`]: driver for the ADXL355 low-noise accelerometer (SPI).
//! - [`tmp117`]: driver for the TMP117 precision thermometer (I2C).
//! - [`sensor`]: the traits the sampling loop needs from hardware.
//! - [`sampling`]: the node's loop: drain the FIFO at a watermark,
//!   timestamp, and emit frames.
//! - [`frame`] and [`codec`]: the frame and its byte-stuffed, CRC-checked
//!   wire form.

#![cfg_attr(not(test), no_std)]

pub mod adxl355;
pub mod codec;
pub mod frame;
pub mod sampling;
pub mod sensor;
pub mod tmp117;

pub use frame::{
    ChannelKind, FrameError, FrameHeader, MAX_SAMPLES_PER_FRAME, SAMPLE_MAX, SAMPLE_MIN,
    SampleFrame,
};
