use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

struct Sharing {
    // list of the tasks to be done by worker threads
    todo: Mutex<VecDeque<Box<dyn FnMut() + Send>>>,

    // condvar that will be notified whenever a task is added to `todo`
    condvar: Condvar,

    // number of total worker threads running
    active_tasks: AtomicUsize,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,
}

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl TaskPool {
    pub fn new() -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: AtomicUsize::new(0),
                waiting_tasks: AtomicUsize::new(0),
            }),
        };

        for _ in 0..MIN_THREADS {
            pool.add_thread(None)
        }

        pool
    }

    /// Executes a function in a thread.
    /// If no thread is available, spawns a new one.
    pub fn spawn(&self, code: Box<dyn FnMut() + Send>) {
        let mut queue = self.sharing.todo.lock().unwrap();

        // nowd patch: a woken thread stays counted as waiting until it has run,
        // so compare the idle threads with the tasks already queued for them.
        // Comparing with zero queued a burst of connections behind a single
        // idle thread, where they waited until some other connection ended.
        let none_idle =
            |queue: &VecDeque<_>| self.sharing.waiting_tasks.load(Ordering::Acquire) <= queue.len();
        if none_idle(&queue) {
            // nowd patch: a thread whose connection has just ended may be
            // runnable but not idle yet (under SCHED_BATCH it does not preempt
            // this accepting thread): let it have the CPU once before starting
            // another, or connection churn starts a thread per connection.
            drop(queue);
            thread::yield_now();
            queue = self.sharing.todo.lock().unwrap();
        }
        if none_idle(&queue) {
            self.add_thread(Some(code));
        } else {
            queue.push_back(code);
            self.sharing.condvar.notify_one();
        }
    }

    fn add_thread(&self, initial_fn: Option<Box<dyn FnMut() + Send>>) {
        let sharing = self.sharing.clone();

        // nowd patch: when the system refuses another thread (a task limit
        // such as systemd's TasksMax), the task is dropped (for a connection:
        // it is closed) instead of panicking in, and ending, the accept thread.
        let spawned = thread::Builder::new().spawn(move || {
            let sharing = sharing;
            let _active_guard = Registration::new(&sharing.active_tasks);

            if let Some(mut f) = initial_fn {
                f();
            }

            loop {
                let mut task: Box<dyn FnMut() + Send> = {
                    let mut todo = sharing.todo.lock().unwrap();

                    let task;
                    loop {
                        if let Some(poped_task) = todo.pop_front() {
                            task = poped_task;
                            break;
                        }
                        let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                        let received =
                            if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                todo = sharing.condvar.wait(todo).unwrap();
                                true
                            } else {
                                let (new_lock, waitres) = sharing
                                    .condvar
                                    .wait_timeout(todo, Duration::from_millis(5000))
                                    .unwrap();
                                todo = new_lock;
                                !waitres.timed_out()
                            };

                        if !received && todo.is_empty() {
                            return;
                        }
                    }

                    task
                };

                task();
            }
        });
        if let Err(e) = spawned {
            log::warn!("Cannot start a thread for a new connection: {}", e);
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}

// nowd patch: the idle accounting: every task gets a thread at once, and an
// idle thread is used before a new one is started
#[cfg(test)]
mod tests {
    use super::{TaskPool, MIN_THREADS};
    use std::collections::HashSet;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::{channel, Receiver};
    use std::sync::{Arc, Barrier};
    use std::thread::{self, ThreadId};
    use std::time::{Duration, Instant};

    const BURST: usize = 24;

    /// Starts `n` tasks that each hold their thread until all `n` run at
    /// once; returns the threads they ran on, or fails if one waited.
    fn burst(pool: &TaskPool, n: usize) -> HashSet<ThreadId> {
        let all_running = Arc::new(Barrier::new(n));
        let (tx, rx) = channel();
        for _ in 0..n {
            let (all_running, tx) = (all_running.clone(), tx.clone());
            pool.spawn(Box::new(move || {
                all_running.wait();
                let _ = tx.send(thread::current().id());
            }));
        }
        collect(&rx, n)
    }

    fn collect(rx: &Receiver<ThreadId>, n: usize) -> HashSet<ThreadId> {
        let by = Instant::now() + Duration::from_secs(10);
        (0..n)
            .map(|i| {
                let left = by.saturating_duration_since(Instant::now());
                rx.recv_timeout(left)
                    .unwrap_or_else(|_| panic!("{} of {} tasks waited for a thread", n - i, n))
            })
            .collect()
    }

    /// Waits until the pool's first threads have started and every thread
    /// is idle.
    fn settle(pool: &TaskPool) {
        let by = Instant::now() + Duration::from_secs(10);
        let sharing = &pool.sharing;
        loop {
            let active = sharing.active_tasks.load(Ordering::Acquire);
            if active >= MIN_THREADS && sharing.waiting_tasks.load(Ordering::Acquire) >= active {
                break;
            }
            assert!(Instant::now() < by, "threads still busy");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn every_connection_finds_a_thread_at_once() {
        let pool = TaskPool::new();
        settle(&pool);
        let threads = burst(&pool, BURST);
        assert_eq!(threads.len(), BURST, "each task on a thread of its own");
    }

    #[test]
    fn idle_threads_are_reused_rather_than_new_ones_started() {
        let pool = TaskPool::new();
        settle(&pool);
        assert_eq!(
            pool.sharing.active_tasks.load(Ordering::Acquire),
            MIN_THREADS
        );

        // One task at a time: the idle threads serve them all.
        let (tx, rx) = channel();
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let tx = tx.clone();
            pool.spawn(Box::new(move || {
                let _ = tx.send(thread::current().id());
            }));
            seen.extend(collect(&rx, 1));
        }
        assert!(
            seen.len() <= MIN_THREADS,
            "{} threads for one task at a time",
            seen.len()
        );

        // A burst grows the pool; once its threads are idle, the next burst
        // of the same size runs on them and starts none.
        let first = burst(&pool, BURST);
        settle(&pool);
        let grown = pool.sharing.active_tasks.load(Ordering::Acquire);
        let second = burst(&pool, BURST);
        settle(&pool);
        assert_eq!(pool.sharing.active_tasks.load(Ordering::Acquire), grown);
        let all_before: HashSet<_> = first.union(&seen).collect();
        assert!(
            second.iter().all(|t| all_before.contains(t)),
            "the second burst started new threads"
        );
    }
}
