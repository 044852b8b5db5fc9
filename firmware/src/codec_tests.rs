//! Codec tests: the byte layout pinned by hand-computed vectors, and
//! properties (round trip, corruption and truncation detected, no panics on
//! arbitrary input) checked with proptest.

use super::*;
use crate::frame::{SAMPLE_MAX, SAMPLE_MIN};
use proptest::prelude::*;

fn header() -> FrameHeader {
    FrameHeader {
        node_id: 0x0102,
        channel_id: 2,
        channel_kind: ChannelKind::Acceleration,
        sequence: 0x0A0B_0C0D,
        sample_rate_mhz: 4_000_000,
        timestamp_us: 1_000_000,
        scale: 0.5,
    }
}

fn small_frame() -> SampleFrame {
    SampleFrame::new(header(), &[1, -2, SAMPLE_MIN, SAMPLE_MAX]).unwrap()
}

/// `small_frame()` before COBS, computed by hand (CRC with Python's
/// `zlib.crc32`, which is CRC-32/ISO-HDLC).
const SMALL_RAW: [u8; 44] = [
    0x01, // version
    0x01, // kind: acceleration
    0x02, 0x01, // node id 0x0102
    0x02, // channel id
    0x00, // reserved
    0x0D, 0x0C, 0x0B, 0x0A, // sequence 0x0A0B0C0D
    0x00, 0x09, 0x3D, 0x00, // 4 000 000 mHz
    0x40, 0x42, 0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 000 000 us
    0x00, 0x00, 0x00, 0x3F, // 0.5f32
    0x04, 0x00, // 4 samples
    0x01, 0x00, 0x00, // 1
    0xFE, 0xFF, 0xFF, // -2
    0x00, 0x00, 0x80, // SAMPLE_MIN
    0xFF, 0xFF, 0x7F, // SAMPLE_MAX
    0xB3, 0xAA, 0x5F, 0x11, // CRC-32 0x115FAAB3
];

/// COBS of `SMALL_RAW` plus the delimiter, computed by hand.
const SMALL_WIRE: [u8; 46] = [
    0x06, 0x01, 0x01, 0x02, 0x01, 0x02, 0x05, 0x0d, 0x0c, 0x0b, 0x0a, 0x03, 0x09, 0x3d, 0x04, 0x40,
    0x42, 0x0f, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x03, 0x3f, 0x04, 0x02, 0x01, 0x01, 0x04,
    0xfe, 0xff, 0xff, 0x01, 0x09, 0x80, 0xff, 0xff, 0x7f, 0xb3, 0xaa, 0x5f, 0x11, 0x00,
];

fn encode_vec(frame: &SampleFrame) -> Vec<u8> {
    let mut out = [0u8; MAX_ENCODED_LEN];
    let n = encode(frame, &mut out).unwrap();
    out[..n].to_vec()
}

/// Raw bytes with their CRC appended.
fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut raw = body.to_vec();
    raw.extend_from_slice(&CRC32.checksum(body).to_le_bytes());
    raw
}

/// COBS packet (no delimiter) of arbitrary raw bytes.
fn stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; cobs::max_encoding_length(raw.len())];
    let n = cobs::encode(raw, &mut out);
    out.truncate(n);
    out
}

fn decode_all(bytes: &[u8]) -> Vec<Result<SampleFrame, CodecError>> {
    FrameDecoder::new().feed(bytes).collect()
}

#[test]
fn crc_is_crc32_iso_hdlc() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(CRC32.checksum(b"123456789"), 0xCBF4_3926);
}

#[test]
fn raw_layout_matches_hand_computed_bytes() {
    let mut raw = [0u8; MAX_RAW_LEN];
    let n = write_raw(&small_frame(), &mut raw);
    assert_eq!(&raw[..n], &SMALL_RAW[..]);
}

#[test]
fn wire_bytes_are_cobs_of_raw_then_one_delimiter() {
    let wire = encode_vec(&small_frame());
    assert_eq!(wire, SMALL_WIRE);
    assert_eq!(
        decode(&SMALL_WIRE[..SMALL_WIRE.len() - 1]),
        Ok(small_frame())
    );
}

#[test]
fn negative_samples_are_sign_extended() {
    let f = decode(&stuff(&SMALL_RAW)).unwrap();
    assert_eq!(f.samples(), &[1, -2, SAMPLE_MIN, SAMPLE_MAX]);
}

#[test]
fn encode_needs_room_for_the_delimiter() {
    let f = small_frame();
    let mut out = [0xAAu8; SMALL_WIRE.len()];
    assert_eq!(encode(&f, &mut out), Ok(SMALL_WIRE.len()));
    assert_eq!(
        encode(&f, &mut out[..SMALL_WIRE.len() - 1]),
        Err(CodecError::BufferTooSmall)
    );
    assert_eq!(encode(&f, &mut []), Err(CodecError::BufferTooSmall));
}

#[test]
fn full_frame_fits_the_worst_case_bound() {
    // Samples without zero bytes keep COBS from shortening anything.
    let f = SampleFrame::new(header(), &[0x010101; MAX_SAMPLES_PER_FRAME]).unwrap();
    let wire = encode_vec(&f);
    assert!(wire.len() <= MAX_ENCODED_LEN);
    assert_eq!(MAX_ENCODED_LEN, 805);
    assert_eq!(decode(&wire[..wire.len() - 1]), Ok(f));
}

#[test]
fn decode_reports_each_kind_of_bad_frame() {
    let body = &SMALL_RAW[..SMALL_RAW.len() - CRC_LEN];
    let edited = |at: usize, v: u8| {
        let mut b = body.to_vec();
        b[at] = v;
        stuff(&with_crc(&b))
    };
    assert_eq!(
        decode(&edited(0, 2)),
        Err(CodecError::UnsupportedVersion(2))
    );
    assert_eq!(
        decode(&edited(1, 9)),
        Err(CodecError::UnknownChannelKind(9))
    );
    assert_eq!(decode(&edited(26, 5)), Err(CodecError::LengthMismatch));
    let mut zero_rate = body.to_vec();
    zero_rate[10..14].fill(0);
    assert_eq!(
        decode(&stuff(&with_crc(&zero_rate))),
        Err(CodecError::Frame(FrameError::ZeroSampleRate))
    );
    let mut nan_scale = body.to_vec();
    nan_scale[22..26].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(
        decode(&stuff(&with_crc(&nan_scale))),
        Err(CodecError::Frame(FrameError::BadScale))
    );
    let mut bad_crc = SMALL_RAW;
    bad_crc[43] ^= 1;
    assert_eq!(decode(&stuff(&bad_crc)), Err(CodecError::Crc));
    assert_eq!(
        decode(&stuff(&with_crc(&[1; 27]))),
        Err(CodecError::TooShort)
    );
    assert_eq!(decode(&[]), Err(CodecError::TooShort));
    assert_eq!(decode(&[1]), Err(CodecError::TooShort));
    // A 0x00 inside a packet, and a code byte pointing past the end.
    assert_eq!(decode(&[3, 1, 0, 1]), Err(CodecError::Cobs));
    assert_eq!(decode(&[9, 1, 1]), Err(CodecError::Cobs));
    assert_eq!(decode(&[1; MAX_ENCODED_LEN]), Err(CodecError::Oversize));
    // Too many decoded bytes for any frame, though the packet length is fine:
    // each 0x01 code byte but the first decodes to a 0x00.
    assert_eq!(decode(&[0x01; MAX_PACKET_LEN]), Err(CodecError::Oversize));
}

#[test]
fn every_single_byte_change_of_a_small_packet_is_rejected() {
    // Exhaustive over position and new value, including 0x00 (which makes
    // the packet invalid COBS, as a receiver would split it there).
    let packet = &SMALL_WIRE[..SMALL_WIRE.len() - 1];
    for at in 0..packet.len() {
        for v in (0..=255u8).filter(|&v| v != packet[at]) {
            let mut p = packet.to_vec();
            p[at] = v;
            assert!(decode(&p).is_err(), "byte {at} set to {v:#04x} accepted");
        }
    }
}

#[test]
fn reserved_byte_is_ignored_on_receipt() {
    let mut b = SMALL_RAW[..SMALL_RAW.len() - CRC_LEN].to_vec();
    b[5] = 0x5A;
    assert_eq!(decode(&stuff(&with_crc(&b))), Ok(small_frame()));
}

#[test]
fn decoder_ignores_empty_packets_and_skips_oversize_once() {
    let mut stream = vec![0, 0, 0];
    stream.extend_from_slice(&[0x42; 3 * MAX_ENCODED_LEN]);
    stream.push(0);
    stream.extend_from_slice(&SMALL_WIRE);
    stream.extend_from_slice(&[0, 0]);
    stream.extend_from_slice(&SMALL_WIRE);
    assert_eq!(
        decode_all(&stream),
        vec![
            Err(CodecError::Oversize),
            Ok(small_frame()),
            Ok(small_frame())
        ]
    );
}

#[test]
fn decoder_limit_is_the_longest_possible_packet() {
    // The longest raw frame without zero bytes makes the longest packet; the
    // decoder must hand it to `decode` (which then finds the CRC wrong).
    let packet = stuff(&[1u8; MAX_RAW_LEN]);
    assert_eq!(packet.len(), MAX_PACKET_LEN);
    assert_eq!(
        decode_all(&[&packet[..], &[0]].concat()),
        vec![Err(CodecError::Crc)]
    );
    // One byte more, and it is refused without decoding.
    let longer = [&[1u8][..], &packet[..], &[0]].concat();
    assert_eq!(decode_all(&longer), vec![Err(CodecError::Oversize)]);
}

#[test]
fn errors_have_distinct_messages() {
    let all = [
        CodecError::BufferTooSmall,
        CodecError::Cobs,
        CodecError::TooShort,
        CodecError::LengthMismatch,
        CodecError::Crc,
        CodecError::UnsupportedVersion(7),
        CodecError::UnknownChannelKind(9),
        CodecError::Oversize,
        CodecError::Frame(FrameError::TooManySamples),
        CodecError::Frame(FrameError::ZeroSampleRate),
        CodecError::Frame(FrameError::SampleOutOfRange),
        CodecError::Frame(FrameError::BadScale),
    ];
    let msgs: Vec<String> = all.iter().map(|e| e.to_string()).collect();
    for (i, m) in msgs.iter().enumerate() {
        assert!(!m.is_empty());
        assert!(
            msgs[i + 1..].iter().all(|o| o != m),
            "duplicate message {m}"
        );
    }
    assert!(msgs[5].contains('7') && msgs[6].contains('9'));
}

fn sample() -> impl Strategy<Value = i32> {
    prop_oneof![
        1 => Just(SAMPLE_MIN),
        1 => Just(SAMPLE_MAX),
        1 => Just(0),
        1 => Just(-1),
        8 => SAMPLE_MIN..=SAMPLE_MAX,
    ]
}

fn valid_frame() -> impl Strategy<Value = SampleFrame> {
    let kind = prop_oneof![
        Just(ChannelKind::Acceleration),
        Just(ChannelKind::Temperature)
    ];
    let scale =
        (proptest::num::f32::POSITIVE | proptest::num::f32::NORMAL | proptest::num::f32::SUBNORMAL)
            .prop_filter("finite, > 0", |s| s.is_finite() && *s > 0.0);
    let header = (
        any::<u16>(),
        any::<u8>(),
        kind,
        any::<u32>(),
        1..=u32::MAX,
        any::<u64>(),
        scale,
    )
        .prop_map(
            |(node_id, channel_id, channel_kind, sequence, rate, ts, scale)| FrameHeader {
                node_id,
                channel_id,
                channel_kind,
                sequence,
                sample_rate_mhz: rate,
                timestamp_us: ts,
                scale,
            },
        );
    let samples = prop_oneof![
        proptest::collection::vec(sample(), 0..=8),
        proptest::collection::vec(sample(), 0..=MAX_SAMPLES_PER_FRAME),
    ];
    (header, samples).prop_map(|(h, s)| SampleFrame::new(h, &s).unwrap())
}

/// The invariants `SampleFrame::new` enforces, checked independently.
fn assert_valid(f: &SampleFrame) {
    let h = f.header();
    assert!(f.samples().len() <= MAX_SAMPLES_PER_FRAME);
    assert_ne!(h.sample_rate_mhz, 0);
    assert!(h.scale.is_finite() && h.scale > 0.0);
    assert!(
        f.samples()
            .iter()
            .all(|s| (SAMPLE_MIN..=SAMPLE_MAX).contains(s))
    );
    assert_eq!(SampleFrame::new(*h, f.samples()).as_ref(), Ok(f));
}

/// A piece of a byte stream for the mixed-stream property.
#[derive(Debug, Clone)]
enum Piece {
    Intact(SampleFrame),
    Garbage(Vec<u8>),
    /// A frame with one byte changed: (frame, position, xor mask != 0).
    Corrupt(SampleFrame, prop::sample::Index, u8),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        3 => valid_frame().prop_map(Piece::Intact),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Piece::Garbage),
        1 => (valid_frame(), any::<prop::sample::Index>(), 1..=255u8)
            .prop_map(|(f, i, m)| Piece::Corrupt(f, i, m)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) encode then decode is the identity, through `decode` and through
    /// `FrameDecoder`; the encoding has exactly one 0x00, at its end.
    #[test]
    fn any_valid_frame_round_trips(f in valid_frame()) {
        let wire = encode_vec(&f);
        prop_assert!(wire.len() <= MAX_ENCODED_LEN);
        prop_assert_eq!(wire.iter().position(|&b| b == 0), Some(wire.len() - 1));
        prop_assert_eq!(decode(&wire[..wire.len() - 1]), Ok(f.clone()));
        prop_assert_eq!(decode_all(&wire), vec![Ok(f)]);
    }

    /// (a) Frames back to back after garbage: the decoder reports only
    /// errors for the garbage, then yields every frame, in order.
    #[test]
    fn frames_after_garbage_are_all_recovered(
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
        frames in proptest::collection::vec(valid_frame(), 1..5),
    ) {
        let mut stream = garbage;
        stream.push(0);
        for f in &frames {
            stream.extend(encode_vec(f));
        }
        let out = decode_all(&stream);
        let (junk, good) = out.split_at(out.len() - frames.len());
        prop_assert!(junk.iter().all(|r| r.is_err()));
        let expected: Vec<_> = frames.into_iter().map(Ok).collect();
        prop_assert_eq!(good, &expected[..]);
    }

    /// (b) One byte of frame 1 changed (xor with a non-zero mask), followed
    /// by intact frames 2 and 3. What is asserted:
    /// - inside the packet (to a non-zero or to a zero value): `decode` of
    ///   the packet is Err, and the stream yields >= 1 Err, then exactly
    ///   frames 2 and 3; no Ok frame comes from frame 1's bytes;
    /// - the delimiter changed to non-zero (frames 1 and 2 merge into one
    ///   packet): the stream yields exactly one Err, then frame 3; frame 2 is
    ///   lost with frame 1, and no wrong frame is accepted.
    /// A change to a data byte changes one raw byte, which CRC-32 always
    /// detects; a change to a COBS code byte or a merge reshapes the raw
    /// frame, which length and CRC reject except with chance ~2^-32.
    #[test]
    fn single_byte_corruption_is_detected(
        f1 in valid_frame(), f2 in valid_frame(), f3 in valid_frame(),
        at in any::<prop::sample::Index>(), mask in 1..=255u8,
    ) {
        let mut e1 = encode_vec(&f1);
        let at = at.index(e1.len());
        e1[at] ^= mask;
        let mut stream = e1.clone();
        stream.extend(encode_vec(&f2));
        stream.extend(encode_vec(&f3));
        let out = decode_all(&stream);
        if at < e1.len() - 1 {
            prop_assert!(decode(&e1[..e1.len() - 1]).is_err());
            prop_assert!(out.len() >= 3, "{:?}", out);
            let (bad, good) = out.split_at(out.len() - 2);
            prop_assert!(bad.iter().all(|r| r.is_err()), "{:?}", bad);
            prop_assert_eq!(good, &[Ok(f2), Ok(f3)][..]);
        } else {
            prop_assert_eq!(out.len(), 2, "{:?}", out);
            prop_assert!(out[0].is_err());
            prop_assert_eq!(&out[1], &Ok(f3));
        }
    }

    /// (b) Truncation: every proper prefix of a packet fails to decode, and
    /// a frame cut short (delimiter lost) merges with the next one into a
    /// single Err, after which the decoder is back in step.
    #[test]
    fn truncation_is_detected(
        f1 in valid_frame(), f2 in valid_frame(),
        cut in any::<prop::sample::Index>(),
    ) {
        let e1 = encode_vec(&f1);
        let packet = &e1[..e1.len() - 1];
        let k = 1 + cut.index(packet.len());
        if k < packet.len() {
            prop_assert!(decode(&packet[..k]).is_err());
        }
        let mut stream = e1[..k].to_vec();
        stream.extend(encode_vec(&f2));
        stream.extend(encode_vec(&f1));
        let out = decode_all(&stream);
        prop_assert_eq!(out.len(), 2, "{:?}", out);
        prop_assert!(out[0].is_err());
        prop_assert_eq!(&out[1], &Ok(f1));
    }

    /// (c) Arbitrary bytes never panic the decoder, and any Ok it yields
    /// satisfies `SampleFrame::new`'s invariants.
    #[test]
    fn decoder_survives_arbitrary_bytes(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..4096),
            proptest::collection::vec(1..=255u8, 0..2048),
        ],
    ) {
        let _ = decode(&bytes);
        let mut d = FrameDecoder::new();
        for &b in &bytes {
            if let Some(Ok(f)) = d.push(b) {
                assert_valid(&f);
            }
        }
    }

    /// (c) Raw frames with a correct CRC but arbitrary header and length
    /// reach the checks after the CRC; they never panic and every Ok is a
    /// valid frame that re-encodes to itself.
    #[test]
    fn arbitrary_frames_with_valid_crc_are_checked(
        body in proptest::collection::vec(any::<u8>(), 0..=HEADER_LEN + 3 * 260),
        version_ok in any::<bool>(),
        kind in 0..4u8,
        count in prop_oneof![0..=260u16, any::<u16>()],
    ) {
        let mut body = body;
        if body.len() >= HEADER_LEN {
            if version_ok { body[0] = VERSION; }
            body[1] = kind;
            body[26..28].copy_from_slice(&count.to_le_bytes());
        }
        let packet = stuff(&with_crc(&body));
        let result = decode(&packet);
        let fed = decode_all(&[&packet[..], &[0]].concat());
        if let Ok(f) = &result {
            assert_valid(f);
            prop_assert_eq!(decode_all(&encode_vec(f)), vec![Ok(f.clone())]);
        }
        prop_assert_eq!(fed, vec![result]);
    }

    /// (a, c) A stream of intact frames, garbage and corrupted frames in any
    /// order: the decoder yields, as Ok and in order, exactly the intact
    /// frames that start after a 0x00 (or at the start); nothing else is Ok.
    #[test]
    fn mixed_stream_yields_exactly_the_reachable_intact_frames(
        pieces in proptest::collection::vec(piece(), 0..8),
    ) {
        let mut stream: Vec<u8> = Vec::new();
        let mut expected = Vec::new();
        for p in pieces {
            match p {
                Piece::Intact(f) => {
                    if stream.last().is_none_or(|&b| b == 0) {
                        expected.push(f.clone());
                    }
                    stream.extend(encode_vec(&f));
                }
                Piece::Garbage(g) => stream.extend(g),
                Piece::Corrupt(f, at, mask) => {
                    let mut e = encode_vec(&f);
                    let at = at.index(e.len());
                    e[at] ^= mask;
                    stream.extend(e);
                }
            }
        }
        let got: Vec<SampleFrame> = decode_all(&stream).into_iter().flatten().collect();
        prop_assert_eq!(got, expected);
    }
}
