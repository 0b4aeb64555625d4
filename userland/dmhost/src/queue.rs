//! Thread pools: a FIFO of jobs served by a fixed set of threads, and a timer that hands
//! background work to a pool when it falls due.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// A job queue; `pop` blocks until a job arrives.
pub struct JobQueue<T> {
    jobs: Mutex<VecDeque<T>>,
    ready: Condvar,
}

impl<T: Send + 'static> JobQueue<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(JobQueue { jobs: Mutex::new(VecDeque::new()), ready: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, job: T) {
        self.lock().push_back(job);
        self.ready.notify_one();
    }

    fn pop(&self) -> T {
        let mut jobs = self.lock();
        loop {
            if let Some(job) = jobs.pop_front() {
                return job;
            }
            jobs = self.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Starts `threads` threads named `name-N` that run `run` on every job, forever.
    pub fn spawn_threads(
        self: &Arc<Self>,
        name: &str,
        threads: usize,
        run: Arc<dyn Fn(T) + Send + Sync>,
    ) -> io::Result<()> {
        for i in 0..threads {
            let queue = Arc::clone(self);
            let run = Arc::clone(&run);
            thread::Builder::new().name(format!("{name}-{i}")).spawn(move || loop {
                let job = queue.pop();
                run(job);
            })?;
        }
        Ok(())
    }
}

/// Work due at a time, ordered earliest first (then in submission order).
struct Timed<T> {
    at: Instant,
    seq: u64,
    job: T,
}

impl<T> PartialEq for Timed<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Timed<T> {}

impl<T> PartialOrd for Timed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Timed<T> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct TimerState<T> {
    heap: BinaryHeap<Timed<T>>,
    seq: u64,
}

/// One thread that sleeps until the earliest job is due and moves it to a [`JobQueue`].
pub struct Timer<T> {
    state: Mutex<TimerState<T>>,
    changed: Condvar,
}

impl<T: Send + 'static> Timer<T> {
    pub fn spawn(target: Arc<JobQueue<T>>) -> io::Result<Arc<Self>> {
        let timer = Arc::new(Timer {
            state: Mutex::new(TimerState { heap: BinaryHeap::new(), seq: 0 }),
            changed: Condvar::new(),
        });
        let t = Arc::clone(&timer);
        thread::Builder::new().name("dm-timer".into()).spawn(move || t.run(&target))?;
        Ok(timer)
    }

    fn lock(&self) -> MutexGuard<'_, TimerState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn schedule(&self, at: Instant, job: T) {
        let mut state = self.lock();
        state.seq = state.seq.wrapping_add(1);
        let seq = state.seq;
        state.heap.push(Timed { at, seq, job });
        drop(state);
        self.changed.notify_one();
    }

    fn run(&self, target: &JobQueue<T>) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let wait = match state.heap.peek() {
                Some(first) if first.at <= now => {
                    if let Some(due) = state.heap.pop() {
                        target.push(due.job);
                    }
                    continue;
                }
                Some(first) => first.at - now,
                // Nothing scheduled: sleep until `schedule` says otherwise.
                None => Duration::from_secs(3600),
            };
            state = match self.changed.wait_timeout(state, wait) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn timer_runs_jobs_in_due_order() {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let queue = JobQueue::new();
        queue
            .spawn_threads(
                "t",
                1,
                Arc::new(move |n: u32| {
                    let _ = tx.lock().map(|tx| tx.send(n));
                }),
            )
            .unwrap();
        let timer = Timer::spawn(queue.clone()).unwrap();
        let now = Instant::now();
        timer.schedule(now + Duration::from_millis(80), 3);
        timer.schedule(now + Duration::from_millis(40), 2);
        queue.push(1);
        let got: Vec<u32> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert!(now.elapsed() >= Duration::from_millis(80));
    }
}
