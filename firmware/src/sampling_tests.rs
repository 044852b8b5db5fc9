//! Sampler tests against fakes: a FIFO fed with a known X/Y/Z ramp that
//! drops its oldest sets when full (as the ADXL355 does), a clock the test
//! advances one sample period per arriving set, and a sink that records (or
//! refuses) what it is given. Everything sent is decoded with `codec::decode`.

use super::*;
use proptest::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

const T0: u64 = 5_000_000;
const RATE_MHZ: u32 = 4_000_000;
const PERIOD_US: u64 = 250;
const G_PER_COUNT: f32 = 3.9e-6;
const C_PER_COUNT: f32 = 0.0078125;
const NODE: u16 = 42;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fault(&'static str);

/// Counts of set `i`; each axis's ramp is offset so that axes cannot be
/// confused.
fn ramp(i: usize) -> [i32; 3] {
    let i = i as i32;
    [i, 100_000 + i, -200_000 + i]
}
const AXIS_OFFSET: [i32; 3] = [0, 100_000, -200_000];

#[derive(Default)]
struct FifoState {
    queue: VecDeque<[i32; 3]>,
    capacity: usize,
    overrun: bool,
    /// One-shot faults.
    fail_read: bool,
    fail_sets: bool,
    fail_overrun: bool,
    rate_mhz: u32,
}

struct FakeAccel(Rc<RefCell<FifoState>>);

impl AccelFifo for FakeAccel {
    type Error = Fault;
    fn fifo_sets(&mut self) -> Result<usize, Fault> {
        let mut s = self.0.borrow_mut();
        if std::mem::take(&mut s.fail_sets) {
            return Err(Fault("sets"));
        }
        Ok(s.queue.len())
    }
    fn read_fifo(&mut self, out: &mut [[i32; 3]]) -> Result<usize, Fault> {
        let mut s = self.0.borrow_mut();
        if std::mem::take(&mut s.fail_read) {
            // A burst read that popped a few sets before the bus failed.
            for _ in 0..out.len().min(3) {
                s.queue.pop_front();
            }
            return Err(Fault("read"));
        }
        let n = out.len().min(s.queue.len());
        for slot in &mut out[..n] {
            *slot = s.queue.pop_front().unwrap();
        }
        Ok(n)
    }
    fn take_overrun(&mut self) -> Result<bool, Fault> {
        let mut s = self.0.borrow_mut();
        let overrun = std::mem::take(&mut s.overrun);
        if std::mem::take(&mut s.fail_overrun) {
            return Err(Fault("overrun flag"));
        }
        Ok(overrun)
    }
    fn sample_rate_mhz(&self) -> u32 {
        self.0.borrow().rate_mhz
    }
    fn g_per_count(&self) -> f32 {
        G_PER_COUNT
    }
}

#[derive(Default)]
struct ThermoState {
    counts: i32,
    fail: bool,
}

struct FakeThermo(Rc<RefCell<ThermoState>>);

impl Thermometer for FakeThermo {
    type Error = Fault;
    fn read_counts(&mut self) -> Result<i32, Fault> {
        let mut s = self.0.borrow_mut();
        if std::mem::take(&mut s.fail) {
            return Err(Fault("thermo"));
        }
        Ok(s.counts)
    }
    fn celsius_per_count(&self) -> f32 {
        C_PER_COUNT
    }
}

struct FakeClock(Rc<Cell<u64>>);

impl Clock for FakeClock {
    fn now_us(&mut self) -> u64 {
        self.0.get()
    }
}

#[derive(Default)]
struct FakeSink {
    sends: Vec<Vec<u8>>,
    /// One-shot fault.
    fail: bool,
}

impl FrameSink for FakeSink {
    type Error = Fault;
    fn send(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        if std::mem::take(&mut self.fail) {
            return Err(Fault("sink"));
        }
        self.sends.push(bytes.to_vec());
        Ok(())
    }
}

type TestError = SamplerError<Fault, Fault, Fault>;

struct Rig {
    clock: Rc<Cell<u64>>,
    fifo: Rc<RefCell<FifoState>>,
    thermo: Rc<RefCell<ThermoState>>,
    sampler: Sampler<FakeAccel, FakeThermo, FakeClock>,
    sink: FakeSink,
    /// Index of the next set to arrive.
    next_set: usize,
}

fn config(samples_per_frame: usize, watermark: usize) -> SamplerConfig {
    SamplerConfig {
        node_id: NODE,
        samples_per_frame,
        fifo_watermark_sets: watermark,
        temperature_period_us: 1_000_000_000,
    }
}

impl Rig {
    fn new(config: SamplerConfig, capacity: usize) -> Rig {
        let clock = Rc::new(Cell::new(T0));
        let fifo = Rc::new(RefCell::new(FifoState {
            capacity,
            rate_mhz: RATE_MHZ,
            ..FifoState::default()
        }));
        let thermo = Rc::new(RefCell::new(ThermoState::default()));
        let sampler = Sampler::new(
            FakeAccel(fifo.clone()),
            FakeThermo(thermo.clone()),
            FakeClock(clock.clone()),
            config,
        )
        .unwrap();
        Rig {
            clock,
            fifo,
            thermo,
            sampler,
            sink: FakeSink::default(),
            next_set: 0,
        }
    }

    /// Lets `sets` sample periods pass; set `i` arrives at T0 + (i+1) * P,
    /// so the sampler should stamp it T0 + i * P.
    fn arrive(&mut self, sets: usize) {
        let mut f = self.fifo.borrow_mut();
        for _ in 0..sets {
            self.clock.set(self.clock.get() + PERIOD_US);
            if f.queue.len() == f.capacity {
                f.queue.pop_front();
                f.overrun = true;
            }
            f.queue.push_back(ramp(self.next_set));
            self.next_set += 1;
        }
    }

    fn poll(&mut self) -> Result<PollReport, TestError> {
        self.sampler.poll(&mut self.sink)
    }

    /// Every frame sent so far, decoded with `codec::decode`.
    fn frames(&self) -> Vec<SampleFrame> {
        self.sink
            .sends
            .iter()
            .map(|bytes| {
                let (&last, packet) = bytes.split_last().unwrap();
                assert_eq!(last, 0, "a send ends with the delimiter");
                // A leading 0x00 (after a failed send) is an empty packet.
                let packet = packet.strip_prefix(&[0]).unwrap_or(packet);
                codec::decode(packet).unwrap()
            })
            .collect()
    }

    /// `check_axis` over the frames of axis 0 (X), 1 (Y) or 2 (Z).
    fn axis(&self, axis: usize) -> Vec<(u32, usize, usize)> {
        check_axis(&self.channel(ACCEL_CHANNELS[axis]), axis)
    }

    fn channel(&self, channel_id: u8) -> Vec<SampleFrame> {
        let frames = self.frames();
        frames
            .into_iter()
            .filter(|f| f.header().channel_id == channel_id)
            .collect()
    }
}

/// Checks one axis's frames: each holds a contiguous piece of the ramp and
/// is stamped with its first set's time; consecutive sequence numbers mean
/// consecutive samples and contiguous timestamps, and a gap in sequence
/// means a gap in the ramp. Returns (sequence, first set, length) per frame.
fn check_axis(frames: &[SampleFrame], axis: usize) -> Vec<(u32, usize, usize)> {
    let mut out: Vec<(u32, usize, usize)> = Vec::new();
    let mut prev: Option<&SampleFrame> = None;
    for f in frames {
        let h = f.header();
        assert_eq!(h.channel_id, ACCEL_CHANNELS[axis]);
        assert_eq!(h.channel_kind, ChannelKind::Acceleration);
        assert_eq!(
            (h.node_id, h.sample_rate_mhz, h.scale),
            (NODE, RATE_MHZ, G_PER_COUNT)
        );
        let first = (f.samples()[0] - AXIS_OFFSET[axis]) as usize;
        for (j, &s) in f.samples().iter().enumerate() {
            assert_eq!(s, ramp(first + j)[axis], "spliced samples in {h:?}");
        }
        assert_eq!(h.timestamp_us, T0 + first as u64 * PERIOD_US);
        if let (Some(p), Some(&(_, p_first, p_len))) = (prev, out.last()) {
            if h.sequence == p.next_sequence() {
                assert_eq!(first, p_first + p_len, "contiguous sequence, gap in data");
                assert!(h.timestamp_us.abs_diff(p.end_timestamp_us()) <= 1);
            } else {
                assert!(first > p_first + p_len, "a sequence gap must be a data gap");
            }
        }
        out.push((h.sequence, first, f.samples().len()));
        prev = Some(f);
    }
    out
}

#[test]
fn frames_come_out_per_axis_in_order_holding_the_ramp() {
    let mut rig = Rig::new(config(32, 8), 32);
    let mut sent = 0;
    for _ in 0..40 {
        rig.arrive(8);
        let r = rig.poll().unwrap();
        assert_eq!((r.sets_read, r.overrun), (8, false));
        sent += r.frames_sent;
    }
    assert_eq!(sent, rig.sink.sends.len());
    let accel: Vec<u8> = rig
        .frames()
        .iter()
        .map(|f| f.header().channel_id)
        .filter(|&c| c != channel::TEMPERATURE)
        .collect();
    assert_eq!(accel, [0, 1, 2].repeat(10));
    let want: Vec<_> = (0..10).map(|k| (k as u32, 32 * k, 32)).collect();
    for axis in 0..3 {
        assert_eq!(rig.axis(axis), want);
    }
}

#[test]
fn timestamps_ignore_how_late_the_fifo_is_read() {
    // Irregular polling: sets wait 9..=30 periods before being read.
    let mut rig = Rig::new(config(50, 9), 64);
    for cadence in [9, 30, 13, 21, 9, 30, 17, 25, 10, 29].repeat(3) {
        rig.arrive(cadence);
        rig.poll().unwrap();
    }
    let got = rig.axis(1);
    assert_eq!(got.len(), rig.next_set / 50);
    assert!(
        got.iter()
            .enumerate()
            .all(|(k, &(seq, first, _))| seq as usize == k && first == 50 * k)
    );
}

#[test]
fn below_the_watermark_nothing_is_read() {
    let mut rig = Rig::new(config(4, 10), 32);
    rig.arrive(9);
    assert_eq!(rig.poll().unwrap().sets_read, 0);
    rig.arrive(1);
    let r = rig.poll().unwrap();
    // 10 sets: two frames per axis, 2 sets left in the buffers.
    assert_eq!((r.sets_read, r.frames_sent), (10, 6));
}

#[test]
fn an_overrun_leaves_a_sequence_gap_and_no_spliced_samples() {
    let mut rig = Rig::new(config(20, 8), 32);
    for _ in 0..6 {
        rig.arrive(8);
        assert!(!rig.poll().unwrap().overrun);
    }
    // 48 sets read: 2 frames per axis and 8 sets buffered. Then the loop
    // stalls for 100 periods; the FIFO keeps only the newest 32 sets.
    rig.arrive(100);
    let r = rig.poll().unwrap();
    assert!(r.overrun);
    for _ in 0..6 {
        rig.arrive(8);
        assert!(!rig.poll().unwrap().overrun);
    }
    // Sequence 2 is skipped; the next frame starts with the oldest set the
    // FIFO kept (148 - 32 = 116) and is stamped accordingly.
    let want = [(0, 0), (1, 20), (3, 116), (4, 136), (5, 156), (6, 176)].map(|(q, f)| (q, f, 20));
    for axis in 0..3 {
        assert_eq!(rig.axis(axis), want);
    }
}

#[test]
fn temperature_is_sent_at_the_configured_period() {
    let mut cfg = config(32, 8);
    cfg.temperature_period_us = 10_000;
    let mut rig = Rig::new(cfg, 32);
    rig.thermo.borrow_mut().counts = -1234;
    rig.poll().unwrap();
    for _ in 0..100 {
        rig.arrive(4); // 1 ms
        rig.poll().unwrap();
    }
    let temps = rig.channel(channel::TEMPERATURE);
    assert_eq!(temps.len(), 11);
    for (k, f) in temps.iter().enumerate() {
        let h = f.header();
        assert_eq!(h.channel_kind, ChannelKind::Temperature);
        assert_eq!(
            (h.node_id, h.sequence, h.sample_rate_mhz),
            (NODE, k as u32, 100_000)
        );
        assert_eq!(
            (h.timestamp_us, h.scale),
            (T0 + 10_000 * k as u64, C_PER_COUNT)
        );
        assert_eq!(f.samples(), &[-1234]);
    }
    // After a stall of 3.5 periods: one reading, not a burst, then the
    // period restarts from it.
    rig.arrive(140);
    rig.poll().unwrap();
    rig.arrive(39);
    rig.poll().unwrap();
    assert_eq!(rig.channel(channel::TEMPERATURE).len(), 12);
    rig.arrive(1);
    rig.poll().unwrap();
    let temps = rig.channel(channel::TEMPERATURE);
    let ts: Vec<u64> = temps[10..]
        .iter()
        .map(|f| f.header().timestamp_us)
        .collect();
    assert_eq!(ts, [T0 + 100_000, T0 + 135_000, T0 + 145_000]);
}

#[test]
fn a_sink_error_is_reported_and_the_frame_retried_after_a_delimiter() {
    let mut rig = Rig::new(config(16, 16), 32);
    rig.poll().unwrap(); // the first temperature reading
    rig.arrive(16);
    rig.sink.fail = true;
    assert_eq!(rig.poll(), Err(SamplerError::Sink(Fault("sink"))));
    // Nothing was sent; X's frame is kept. The next poll sends it first,
    // after a 0x00 that ends any half-sent copy.
    rig.arrive(16);
    let r = rig.poll().unwrap();
    assert_eq!((r.frames_sent, r.sets_read), (6, 16));
    assert_eq!(rig.sink.sends[1][0], 0);
    assert!(rig.sink.sends[2..].iter().all(|s| s[0] != 0));
    for axis in 0..3 {
        assert_eq!(rig.axis(axis), [(0, 0, 16), (1, 16, 16)]);
    }
}

#[test]
fn accelerometer_errors_are_reported_and_never_splice() {
    let mut rig = Rig::new(config(10, 5), 32);
    rig.arrive(5);
    rig.poll().unwrap();
    // Counting the FIFO fails: nothing is lost, nothing is skipped.
    rig.arrive(5);
    rig.fifo.borrow_mut().fail_sets = true;
    assert_eq!(rig.poll(), Err(SamplerError::Accel(Fault("sets"))));
    rig.poll().unwrap();
    // A read fails after popping sets: the partial frame is dropped.
    rig.arrive(5);
    rig.fifo.borrow_mut().fail_read = true;
    assert_eq!(rig.poll(), Err(SamplerError::Accel(Fault("read"))));
    rig.arrive(10);
    rig.poll().unwrap();
    // The overrun flag cannot be read: assume it was set.
    rig.arrive(5);
    rig.poll().unwrap();
    rig.fifo.borrow_mut().fail_overrun = true;
    assert_eq!(rig.poll(), Err(SamplerError::Accel(Fault("overrun flag"))));
    rig.arrive(10);
    rig.poll().unwrap();
    let got = rig.axis(2);
    // 0..10 sent; the failed read popped 10..13 (sequence 1 skipped);
    // 13..23 sent; 23..30 dropped with the unreadable flag (3 skipped).
    assert_eq!(got, vec![(0, 0, 10), (2, 13, 10), (4, 30, 10)]);
}

#[test]
fn a_thermometer_error_is_reported_and_retried() {
    let mut rig = Rig::new(config(32, 8), 32);
    rig.thermo.borrow_mut().fail = true;
    assert_eq!(rig.poll(), Err(SamplerError::Thermometer(Fault("thermo"))));
    rig.arrive(1);
    assert_eq!(rig.poll().unwrap().frames_sent, 1);
    let temps = rig.channel(channel::TEMPERATURE);
    assert_eq!(temps.len(), 1);
    assert_eq!(temps[0].header().sequence, 0);
}

#[test]
fn a_zero_sample_rate_is_refused_before_reading() {
    let mut rig = Rig::new(config(4, 4), 32);
    rig.arrive(8);
    rig.fifo.borrow_mut().rate_mhz = 0;
    assert_eq!(
        rig.poll(),
        Err(SamplerError::Frame(FrameError::ZeroSampleRate))
    );
    assert_eq!(rig.fifo.borrow().queue.len(), 8);
    assert!(rig.sink.sends.is_empty());
}

#[test]
fn bad_configurations_are_refused() {
    use ConfigError::*;
    let period = |p| SamplerConfig {
        temperature_period_us: p,
        ..config(1, 1)
    };
    let cases = [
        (config(0, 1), SamplesPerFrame),
        (config(MAX_SAMPLES_PER_FRAME + 1, 1), SamplesPerFrame),
        (config(1, 0), FifoWatermark),
        (period(0), TemperaturePeriod),
        (period(1_000_000_001), TemperaturePeriod),
    ];
    for (c, e) in cases {
        assert_eq!(c.validate(), Err(e));
        assert!(!e.to_string().is_empty());
    }
    assert!(config(MAX_SAMPLES_PER_FRAME, 1).validate().is_ok());
    assert!(period(1_000_000_000).validate().is_ok());
    // `new` refuses too; `destroy` hands the hardware back.
    let rig = Rig::new(config(1, 1), 1);
    let (accel, thermo, clock) = rig.sampler.destroy();
    assert!(Sampler::new(accel, thermo, clock, config(0, 1)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any frame size, watermark and polling rhythm (without overrun): each
    /// axis gets every full frame of the ramp, with sequences 0, 1, 2, ...
    /// and contiguous timestamps, and the report counts what was sent.
    #[test]
    fn any_rhythm_yields_the_whole_ramp(
        spf in 1..=MAX_SAMPLES_PER_FRAME,
        watermark in 1..=16usize,
        cadence in proptest::collection::vec(0..=40usize, 1..40),
    ) {
        let mut rig = Rig::new(config(spf, watermark), 64);
        let (mut sent, mut read) = (0, 0);
        for c in cadence {
            rig.arrive(c);
            let r = rig.poll().unwrap();
            prop_assert!(!r.overrun);
            sent += r.frames_sent;
            read += r.sets_read;
        }
        prop_assert_eq!(sent, rig.sink.sends.len());
        for axis in 0..3 {
            let got = rig.axis(axis);
            let want: Vec<_> = (0..read / spf).map(|k| (k as u32, spf * k, spf)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
