use super::super::Block;
use super::*;
use firmware::codec::{MAX_ENCODED_LEN, encode};
use firmware::{ChannelKind, FrameHeader, SampleFrame};
use std::io::Write;
use std::net::TcpListener;

const NODE: u16 = 7;
const RATE_MHZ: u32 = 5_120_000;
const PER_FRAME: usize = 128;

fn frame(
    node: u16,
    channel: u8,
    kind: ChannelKind,
    seq: u32,
    ts_us: u64,
    samples: &[i32],
) -> Vec<u8> {
    let header = FrameHeader {
        node_id: node,
        channel_id: channel,
        channel_kind: kind,
        sequence: seq,
        sample_rate_mhz: if kind == ChannelKind::Acceleration {
            RATE_MHZ
        } else {
            4_000
        },
        timestamp_us: ts_us,
        scale: if kind == ChannelKind::Acceleration {
            1e-3
        } else {
            0.0078125
        },
    };
    let f = SampleFrame::new(header, samples).unwrap();
    let mut out = [0u8; MAX_ENCODED_LEN];
    let n = encode(&f, &mut out).unwrap();
    out[..n].to_vec()
}

/// The byte stream of a node: 10 vibration frames of a ramp on channel 2,
/// a temperature frame every 4, another node's frames, garbage, frame 5
/// lost and frame 7 damaged on the link.
fn node_stream() -> Vec<u8> {
    let mut bytes = b"\x13\x37garbage before any delimiter".to_vec();
    bytes.push(0);
    for seq in 0..10u32 {
        let ts = 1_000_000 + seq as u64 * 25_000; // 128 samples at 5.12 kHz
        if seq % 4 == 0 {
            bytes.extend(frame(
                NODE,
                3,
                ChannelKind::Temperature,
                seq / 4,
                ts,
                &[40 * 128 + seq as i32],
            ));
        }
        bytes.extend(frame(
            NODE + 1,
            2,
            ChannelKind::Acceleration,
            seq,
            ts,
            &[9; PER_FRAME],
        ));
        let samples: Vec<i32> = (0..PER_FRAME as i32)
            .map(|i| seq as i32 * 1000 + i)
            .collect();
        let mut f = frame(NODE, 2, ChannelKind::Acceleration, seq, ts, &samples);
        match seq {
            5 => continue,
            7 => f[40] ^= 0x5a,
            _ => {}
        }
        bytes.extend(f);
    }
    bytes
}

fn config(connect: String) -> NodeLinkConfig {
    NodeLinkConfig {
        connect,
        baud: 921_600,
        node_id: NODE,
        vibration_channel_id: 2,
        temperature_channel_id: 3,
        sample_rate_hz: 5120.0,
    }
}

/// Polls until `n` blocks arrived (bounded).
fn blocks(link: &mut NodeLink, n: usize) -> Vec<Block> {
    let mut out = Vec::new();
    for _ in 0..200 {
        if out.len() == n {
            break;
        }
        if let SourcePoll::Block(b) = link.poll().unwrap() {
            out.push(b);
        }
    }
    out
}

#[test]
fn frames_over_tcp_become_blocks_with_gaps_and_damage_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // Dribble the stream in small writes, as a serial bridge would.
        for chunk in node_stream().chunks(97) {
            s.write_all(chunk).unwrap();
        }
        // Keep the connection open until the client has read everything.
        let mut sink = [0u8; 1];
        let _ = s.read(&mut sink);
    });
    let mut link = NodeLink::open(&config(format!("tcp://{addr}"))).unwrap();
    let got = blocks(&mut link, 8);
    assert_eq!(got.len(), 8, "frames 0-4, 6, 8, 9 of node 7");
    // Counts times the frame's scale.
    assert_eq!(got[0].vibration[..3], [0.0, 0.001, 0.002]);
    assert!((got[7].vibration[127] - 9.127).abs() < 1e-6);
    // Node spacing is kept: 25 ms per frame, 50 ms across the lost one.
    assert_eq!(got[1].start_us - got[0].start_us, 25_000);
    assert_eq!(got[5].start_us - got[4].start_us, 50_000);
    assert_eq!(got[6].start_us - got[5].start_us, 50_000);
    // Temperature readings ride with the next vibration block, in C.
    assert_eq!(got[0].temperature, vec![40.0]);
    assert_eq!(got[4].temperature, vec![40.0 + 4.0 * 0.0078125]);
    let c = link.counters();
    assert_eq!(c.sequence_gaps, 2, "{c:?}");
    assert!(c.frame_errors >= 2, "garbage and the damaged frame: {c:?}");
    assert_eq!(link.frame_errors(), c.frame_errors);
    drop(link);
    server.join().unwrap();
}

#[test]
fn a_unix_socket_works_the_same_and_reconnects_after_the_node_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&frame(
                NODE,
                2,
                ChannelKind::Acceleration,
                0,
                5,
                &[1; PER_FRAME],
            ))
            .unwrap();
            // Closing makes the client reconnect.
        }
    });
    let mut link = NodeLink::open(&config(format!("unix://{}", path.display()))).unwrap();
    let got = blocks(&mut link, 2);
    assert_eq!(got.len(), 2);
    // Both connections started the node at sequence 0: no gap counted, as
    // a new connection may be a rebooted node.
    assert_eq!(link.counters().sequence_gaps, 0);
    assert!(link.counters().reconnects >= 2);
    server.join().unwrap();
}

#[test]
fn an_unreachable_node_is_idle_not_an_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut link = NodeLink::open(&config(format!("tcp://127.0.0.1:{port}"))).unwrap();
    for _ in 0..3 {
        assert_eq!(link.poll().unwrap(), SourcePoll::Idle);
    }
}

#[test]
fn bad_link_settings_are_refused_with_the_reason() {
    assert!(
        config("ttyUSB0".into())
            .validate()
            .unwrap_err()
            .contains("needs a scheme")
    );
    assert!(
        config("udp://x:1".into())
            .validate()
            .unwrap_err()
            .contains("`udp`")
    );
    assert!(
        config("serial://".into())
            .validate()
            .unwrap_err()
            .contains("no address")
    );
    let mut c = config("serial:///dev/ttyUSB0".into());
    assert!(c.validate().is_ok());
    c.temperature_channel_id = 2;
    assert!(c.validate().is_err());
}
