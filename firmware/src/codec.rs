//! The node-to-gateway wire form of a [`SampleFrame`]: fixed little-endian
//! fields, a CRC-32, and COBS byte stuffing with a `0x00` delimiter.
//!
//! Why this shape: the link is a bare byte stream (a UART) with no framing of
//! its own, so a receiver that starts listening mid-frame, or loses bytes to
//! line noise, must find the next frame boundary without any help. COBS
//! guarantees that `0x00` never appears inside an encoded frame, so the next
//! `0x00` is always a boundary; its overhead is bounded (one byte in 254),
//! which lets both sides use fixed buffers sized by [`MAX_ENCODED_LEN`]. The
//! CRC-32 then rejects what COBS cannot notice (a flipped data byte). Samples
//! travel as 24-bit integers because that is all [`SampleFrame`] allows, and
//! it saves a quarter of the bandwidth of `i32`. Every field is fixed-width
//! and little-endian (the byte order of both Cortex-M and the gateway), so the
//! encoder is a few copies and needs no allocation.
//!
//! Raw frame, version 1 (before COBS; offsets in bytes):
//!
//! | offset   | size | type   | field                                        |
//! |----------|------|--------|----------------------------------------------|
//! | 0        | 1    | u8     | version, always 1                            |
//! | 1        | 1    | u8     | channel kind (1 acceleration, 2 temperature) |
//! | 2        | 2    | u16    | node id                                      |
//! | 4        | 1    | u8     | channel id                                   |
//! | 5        | 1    | u8     | reserved, sent as 0, ignored on receipt      |
//! | 6        | 4    | u32    | sequence                                     |
//! | 10       | 4    | u32    | sample rate, mHz                             |
//! | 14       | 8    | u64    | timestamp of the first sample, µs            |
//! | 22       | 4    | f32    | scale, units per count (IEEE 754)            |
//! | 26       | 2    | u16    | sample count `n` (at most 256)               |
//! | 28       | 3n   | i24 ×n | samples, two's complement, little-endian     |
//! | 28 + 3n  | 4    | u32    | CRC-32/ISO-HDLC of bytes `0 .. 28 + 3n`      |
//!
//! On the wire: `COBS(raw) ++ [0x00]`. The version byte is checked before the
//! CRC so that a frame from a newer node is reported as
//! [`CodecError::UnsupportedVersion`] (its layout, and so its CRC position,
//! may differ) rather than as line noise.
//!
//! [`decode`] reads one packet; [`FrameDecoder`] splits a byte stream at the
//! delimiters and resynchronises after garbage or an over-long packet.

use core::fmt;

use crate::frame::{ChannelKind, FrameError, FrameHeader, MAX_SAMPLES_PER_FRAME, SampleFrame};

/// The only raw-frame version this codec writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the samples.
const HEADER_LEN: usize = 28;
/// Bytes per sample on the wire.
const SAMPLE_LEN: usize = 3;
/// Bytes of the trailing CRC.
const CRC_LEN: usize = 4;
/// Shortest raw frame (no samples).
const MIN_RAW_LEN: usize = HEADER_LEN + CRC_LEN;
/// Longest raw frame (a full frame).
const MAX_RAW_LEN: usize = HEADER_LEN + MAX_SAMPLES_PER_FRAME * SAMPLE_LEN + CRC_LEN;
/// Longest COBS packet, without its delimiter.
const MAX_PACKET_LEN: usize = cobs::max_encoding_length(MAX_RAW_LEN);
/// Worst-case length of one encoded frame: COBS overhead and the `0x00`
/// delimiter included. A buffer this long always suffices for [`encode`].
pub const MAX_ENCODED_LEN: usize = MAX_PACKET_LEN + 1;

/// CRC-32 as used by Ethernet, zlib and PNG, so any tool can check a frame.
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// The output buffer cannot hold the encoded frame.
    BufferTooSmall,
    /// The packet is not valid COBS (or contains a `0x00`).
    Cobs,
    /// Fewer bytes than the smallest frame.
    TooShort,
    /// The sample count disagrees with the frame's length.
    LengthMismatch,
    /// The CRC does not match the content.
    Crc,
    /// A version this codec does not know.
    UnsupportedVersion(u8),
    /// A channel kind this codec does not know.
    UnknownChannelKind(u8),
    /// Longer than any valid frame.
    Oversize,
    /// The header holds values [`SampleFrame::new`] refuses.
    Frame(FrameError),
}

impl From<FrameError> for CodecError {
    fn from(e: FrameError) -> Self {
        CodecError::Frame(e)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::BufferTooSmall => write!(
                f,
                "output buffer too small for the encoded frame (up to {MAX_ENCODED_LEN} bytes)"
            ),
            CodecError::Cobs => f.write_str("packet is not valid COBS"),
            CodecError::TooShort => write!(
                f,
                "frame shorter than the {MIN_RAW_LEN}-byte minimum (header and CRC)"
            ),
            CodecError::LengthMismatch => {
                f.write_str("sample count does not match the frame length")
            }
            CodecError::Crc => f.write_str("CRC mismatch: frame corrupted"),
            CodecError::UnsupportedVersion(v) => {
                write!(f, "unsupported frame version {v} (expected {VERSION})")
            }
            CodecError::UnknownChannelKind(k) => write!(f, "unknown channel kind {k}"),
            CodecError::Oversize => write!(
                f,
                "packet longer than any valid frame ({MAX_ENCODED_LEN} bytes with delimiter); discarded"
            ),
            CodecError::Frame(e) => match e {
                FrameError::TooManySamples => {
                    write!(f, "frame has more than {MAX_SAMPLES_PER_FRAME} samples")
                }
                FrameError::ZeroSampleRate => f.write_str("frame has a sample rate of zero"),
                FrameError::SampleOutOfRange => {
                    f.write_str("frame has a sample outside the signed 24-bit range")
                }
                FrameError::BadScale => {
                    f.write_str("frame has a scale that is zero, negative or not finite")
                }
            },
        }
    }
}

impl core::error::Error for CodecError {}

/// Writes the raw (un-stuffed) frame into `raw`; returns its length.
fn write_raw(frame: &SampleFrame, raw: &mut [u8; MAX_RAW_LEN]) -> usize {
    let h = frame.header();
    let samples = frame.samples();
    raw[0] = VERSION;
    raw[1] = h.channel_kind as u8;
    raw[2..4].copy_from_slice(&h.node_id.to_le_bytes());
    raw[4] = h.channel_id;
    raw[5] = 0;
    raw[6..10].copy_from_slice(&h.sequence.to_le_bytes());
    raw[10..14].copy_from_slice(&h.sample_rate_mhz.to_le_bytes());
    raw[14..22].copy_from_slice(&h.timestamp_us.to_le_bytes());
    raw[22..26].copy_from_slice(&h.scale.to_le_bytes());
    // SampleFrame holds at most MAX_SAMPLES_PER_FRAME (256) samples.
    raw[26..28].copy_from_slice(&(samples.len() as u16).to_le_bytes());
    let mut at = HEADER_LEN;
    for s in samples {
        // SampleFrame guarantees 24-bit range, so the top byte is redundant.
        raw[at..at + SAMPLE_LEN].copy_from_slice(&s.to_le_bytes()[..SAMPLE_LEN]);
        at += SAMPLE_LEN;
    }
    let crc = CRC32.checksum(&raw[..at]);
    raw[at..at + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    at + CRC_LEN
}

/// Encodes `frame` as COBS bytes followed by the `0x00` delimiter into `out`;
/// returns how many bytes were written. `out` of [`MAX_ENCODED_LEN`] bytes
/// always suffices.
pub fn encode(frame: &SampleFrame, out: &mut [u8]) -> Result<usize, CodecError> {
    let mut raw = [0u8; MAX_RAW_LEN];
    let raw_len = write_raw(frame, &mut raw);
    // Keep the last byte of `out` free so the delimiter always fits.
    let body_room = out.len().checked_sub(1).ok_or(CodecError::BufferTooSmall)?;
    let n = cobs::try_encode(&raw[..raw_len], &mut out[..body_room])
        .map_err(|_| CodecError::BufferTooSmall)?;
    out[n] = 0;
    Ok(n + 1)
}

/// Decodes one COBS packet, given without its `0x00` delimiter.
pub fn decode(packet: &[u8]) -> Result<SampleFrame, CodecError> {
    if packet.len() > MAX_PACKET_LEN {
        return Err(CodecError::Oversize);
    }
    if packet.is_empty() {
        return Err(CodecError::TooShort);
    }
    // cobs::decode would stop at an inner 0x00 and ignore the rest.
    if packet.contains(&0) {
        return Err(CodecError::Cobs);
    }
    let mut raw = [0u8; MAX_RAW_LEN];
    let report = cobs::decode(packet, &mut raw).map_err(|e| match e {
        cobs::DecodeError::TargetBufTooSmall => CodecError::Oversize,
        _ => CodecError::Cobs,
    })?;
    if report.parsed_size() != packet.len() {
        return Err(CodecError::Cobs);
    }
    parse_raw(&raw[..report.frame_size()])
}

/// Checks and parses an un-stuffed frame.
fn parse_raw(raw: &[u8]) -> Result<SampleFrame, CodecError> {
    let version = *raw.first().ok_or(CodecError::TooShort)?;
    if version != VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    if raw.len() < MIN_RAW_LEN {
        return Err(CodecError::TooShort);
    }
    let (body, crc) = raw.split_at(raw.len() - CRC_LEN);
    if CRC32.checksum(body) != u32::from_le_bytes(array(crc)) {
        return Err(CodecError::Crc);
    }
    let kind = ChannelKind::from_u8(body[1]).ok_or(CodecError::UnknownChannelKind(body[1]))?;
    let n = usize::from(u16::from_le_bytes(array(&body[26..28])));
    if n > MAX_SAMPLES_PER_FRAME {
        return Err(CodecError::Oversize);
    }
    if body.len() != HEADER_LEN + n * SAMPLE_LEN {
        return Err(CodecError::LengthMismatch);
    }
    let header = FrameHeader {
        node_id: u16::from_le_bytes(array(&body[2..4])),
        channel_id: body[4],
        channel_kind: kind,
        sequence: u32::from_le_bytes(array(&body[6..10])),
        sample_rate_mhz: u32::from_le_bytes(array(&body[10..14])),
        timestamp_us: u64::from_le_bytes(array(&body[14..22])),
        scale: f32::from_le_bytes(array(&body[22..26])),
    };
    let mut samples = [0i32; MAX_SAMPLES_PER_FRAME];
    for (s, b) in samples
        .iter_mut()
        .zip(body[HEADER_LEN..].chunks_exact(SAMPLE_LEN))
    {
        // Put the 24 bits at the top, then shift back to sign-extend.
        *s = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
    }
    Ok(SampleFrame::new(header, &samples[..n])?)
}

/// Copies a slice whose length the caller has already fixed into an array.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(bytes);
    a
}

/// Splits a byte stream at `0x00` delimiters and decodes each packet.
///
/// It holds one packet in a fixed buffer (no allocation). A packet that runs
/// past [`MAX_ENCODED_LEN`] bytes without a delimiter cannot be a frame: it is
/// reported once as [`CodecError::Oversize`] and its bytes are dropped until
/// the next `0x00`, where decoding resumes. Empty packets (consecutive
/// delimiters, which a sender may use to flush a receiver) are ignored.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: [u8; MAX_PACKET_LEN],
    len: usize,
    /// Dropping bytes until the next delimiter.
    discarding: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub const fn new() -> Self {
        FrameDecoder {
            buf: [0; MAX_PACKET_LEN],
            len: 0,
            discarding: false,
        }
    }

    /// Takes one byte; returns a result when the byte ends a packet (or, once,
    /// when a packet grows too long).
    pub fn push(&mut self, byte: u8) -> Option<Result<SampleFrame, CodecError>> {
        if byte == 0 {
            let len = core::mem::replace(&mut self.len, 0);
            if core::mem::replace(&mut self.discarding, false) || len == 0 {
                return None;
            }
            return Some(decode(&self.buf[..len]));
        }
        if self.discarding {
            return None;
        }
        if self.len == self.buf.len() {
            self.len = 0;
            self.discarding = true;
            return Some(Err(CodecError::Oversize));
        }
        self.buf[self.len] = byte;
        self.len += 1;
        None
    }

    /// Pushes every byte of `bytes`, yielding each result as it completes.
    pub fn feed<'a>(
        &'a mut self,
        bytes: &'a [u8],
    ) -> impl Iterator<Item = Result<SampleFrame, CodecError>> + 'a {
        bytes.iter().filter_map(move |&b| self.push(b))
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
