//! FFT plans and work buffers shared by every extractor of the process.
//!
//! A gateway may watch dozens of channels at tens of kilosamples per second.
//! Each extractor owning its FFT plan (twiddle tables) and work buffers would
//! cost close to a megabyte per channel; but no more transforms can run at
//! once than there are cores. So plans are shared per length, and buffers
//! are borrowed from a pool for the duration of one transform and given
//! back. The pool holds at most one set per core and length: when all are
//! in use a scoring thread waits for one (it could not run anyway), so
//! channels that all cut a window at the same moment do not each allocate.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

/// A forward real FFT of one length, and the power of its Hann window.
///
/// The window itself is not tabulated: it is applied to the bins that are
/// read (see [`super::spectrum::BinView::windowed`]), which is cheaper than
/// multiplying every sample and saves a table as long as the window.
pub struct RealPlan {
    pub fft: Arc<dyn RealToComplex<f64>>,
    pub len: usize,
    /// Sum of the squared periodic Hann window, for power scaling.
    pub hann_power: f64,
}

/// Work buffers of one forward real FFT.
pub struct RealBuffers {
    pub input: Vec<f64>,
    pub output: Vec<Complex<f64>>,
    pub scratch: Vec<Complex<f64>>,
}

/// Work buffers of the envelope analysis at one size (single precision:
/// see [`super::envelope`]).
pub struct EnvelopeBuffers {
    pub analytic: Vec<Complex<f32>>,
    pub inverse_scratch: Vec<Complex<f32>>,
    pub envelope: Vec<f32>,
    pub spectrum: Vec<Complex<f32>>,
    pub forward_scratch: Vec<Complex<f32>>,
}

#[derive(Default)]
struct Pool {
    real_plans: HashMap<usize, Arc<RealPlan>>,
    inverse_plans: HashMap<usize, Arc<dyn Fft<f32>>>,
    forward_plans_f32: HashMap<usize, Arc<dyn RealToComplex<f32>>>,
    real_buffers: HashMap<usize, Sets<RealBuffers>>,
    envelope_buffers: HashMap<usize, Sets<EnvelopeBuffers>>,
    /// Threads waiting for a set: only then does giving one back wake them
    /// (a wake-up is a system call, twice per window otherwise).
    waiting: usize,
}

/// The idle buffer sets of one length, and how many exist.
struct Sets<T> {
    idle: Vec<T>,
    created: usize,
}

impl<T> Default for Sets<T> {
    fn default() -> Self {
        Sets {
            idle: Vec::new(),
            created: 0,
        }
    }
}

static POOL: OnceLock<(Mutex<Pool>, Condvar)> = OnceLock::new();

fn pool_and_signal() -> &'static (Mutex<Pool>, Condvar) {
    POOL.get_or_init(Default::default)
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    pool_and_signal()
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Most buffer sets per length: one per core.
fn max_sets() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Buffer sets the pool keeps, by length.
trait Pooled: Sized {
    fn sets(pool: &mut Pool, len: usize) -> &mut Sets<Self>;
}

impl Pooled for RealBuffers {
    fn sets(pool: &mut Pool, len: usize) -> &mut Sets<Self> {
        pool.real_buffers.entry(len).or_default()
    }
}

impl Pooled for EnvelopeBuffers {
    fn sets(pool: &mut Pool, len: usize) -> &mut Sets<Self> {
        pool.envelope_buffers.entry(len).or_default()
    }
}

/// Takes an idle set, creates one if fewer than [`max_sets`] exist, or
/// waits for one to be given back.
fn take<T: Pooled>(len: usize, create: impl FnOnce() -> T) -> T {
    let (lock, signal) = pool_and_signal();
    let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let sets = T::sets(&mut guard, len);
        if let Some(set) = sets.idle.pop() {
            return set;
        }
        if sets.created < max_sets() {
            sets.created += 1;
            drop(guard);
            return create();
        }
        guard.waiting += 1;
        guard = signal.wait(guard).unwrap_or_else(|p| p.into_inner());
        guard.waiting -= 1;
    }
}

fn give_back<T: Pooled>(len: usize, set: T) {
    let (lock, signal) = pool_and_signal();
    let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    T::sets(&mut guard, len).idle.push(set);
    if guard.waiting > 0 {
        signal.notify_all();
    }
}

/// The shared forward plan for `len` samples.
pub fn real_plan(len: usize) -> Arc<RealPlan> {
    pool()
        .real_plans
        .entry(len)
        .or_insert_with(|| {
            let fft = RealFftPlanner::<f64>::new().plan_fft_forward(len);
            let hann_power = (0..len)
                .map(|i| {
                    let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / len as f64).cos();
                    w * w
                })
                .sum();
            Arc::new(RealPlan {
                fft,
                len,
                hann_power,
            })
        })
        .clone()
}

/// The shared single-precision inverse complex plan for `len` points.
pub fn inverse_plan_f32(len: usize) -> Arc<dyn Fft<f32>> {
    pool()
        .inverse_plans
        .entry(len)
        .or_insert_with(|| FftPlanner::<f32>::new().plan_fft_inverse(len))
        .clone()
}

/// The shared single-precision forward real plan for `len` samples.
pub fn real_plan_f32(len: usize) -> Arc<dyn RealToComplex<f32>> {
    pool()
        .forward_plans_f32
        .entry(len)
        .or_insert_with(|| RealFftPlanner::<f32>::new().plan_fft_forward(len))
        .clone()
}

/// A borrowed buffer set, given back when dropped: also when the code using
/// it panics, or the set would be lost and, once every set was, the other
/// channels of that length would wait for ever.
struct Lease<T: Pooled> {
    len: usize,
    set: Option<T>,
}

impl<T: Pooled> Lease<T> {
    fn take(len: usize, create: impl FnOnce() -> T) -> Self {
        Lease {
            len,
            set: Some(take(len, create)),
        }
    }

    fn set(&mut self) -> &mut T {
        self.set
            .as_mut()
            .expect("a lease holds its set until dropped")
    }
}

impl<T: Pooled> Drop for Lease<T> {
    fn drop(&mut self) {
        if let Some(set) = self.set.take() {
            give_back(self.len, set);
        }
    }
}

/// Runs `f` with work buffers for a forward FFT of `plan`'s length.
pub fn with_real_buffers<R>(plan: &RealPlan, f: impl FnOnce(&mut RealBuffers) -> R) -> R {
    let mut lease = Lease::take(plan.len, || RealBuffers {
        input: plan.fft.make_input_vec(),
        output: plan.fft.make_output_vec(),
        scratch: plan.fft.make_scratch_vec(),
    });
    f(lease.set())
}

/// Runs `f` with work buffers for an envelope analysis of size `size`.
pub fn with_envelope_buffers<R>(
    size: usize,
    inverse: &Arc<dyn Fft<f32>>,
    forward: &Arc<dyn RealToComplex<f32>>,
    f: impl FnOnce(&mut EnvelopeBuffers) -> R,
) -> R {
    let mut lease = Lease::take(size, || EnvelopeBuffers {
        analytic: vec![Complex::default(); size],
        inverse_scratch: vec![Complex::default(); inverse.get_inplace_scratch_len()],
        envelope: forward.make_input_vec(),
        spectrum: forward.make_output_vec(),
        forward_scratch: forward.make_scratch_vec(),
    });
    f(lease.set())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn more_threads_than_sets_all_get_one_and_no_more_sets_are_made() {
        // A length no other test uses, so the count below is this test's.
        let len = 4099;
        let plan = real_plan(len);
        let threads = 4 * max_sets();
        let (done, finished) = mpsc::channel();
        for _ in 0..threads {
            let (plan, done) = (plan.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    with_real_buffers(&plan, |b| {
                        b.input.fill(1.0);
                        std::thread::yield_now();
                    });
                }
                done.send(()).unwrap();
            });
        }
        for i in 0..threads {
            // A lost wake-up would leave a thread waiting for ever.
            finished
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("only {i} of {threads} threads finished"));
        }
        let pool = pool();
        let sets = &pool.real_buffers[&len];
        assert!(sets.created <= max_sets(), "{} sets made", sets.created);
        assert_eq!(sets.idle.len(), sets.created, "every set was given back");
        assert_eq!(pool.waiting, 0);
    }

    #[test]
    fn a_panic_while_holding_a_set_gives_it_back() {
        let len = 4111;
        let plan = real_plan(len);
        for _ in 0..max_sets() + 1 {
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_real_buffers(&plan, |_| panic!("a feature failed"))
            }));
            assert!(caught.is_err());
        }
        // Had the sets been lost, this would wait for ever.
        let (done, finished) = mpsc::channel();
        let plan2 = plan.clone();
        std::thread::spawn(move || {
            with_real_buffers(&plan2, |b| b.input.len());
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("a set is available after the panics");
        let pool = pool();
        assert_eq!(
            pool.real_buffers[&len].idle.len(),
            pool.real_buffers[&len].created
        );
    }
}
