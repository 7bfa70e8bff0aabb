use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

enum Control<T> {
    Elem(T),
    Unblock,
}

pub struct MessagesQueue<T>
where
    T: Send,
{
    queue: Mutex<Queue<T>>,
    condvar: Condvar,
}

// nowd patch: the queue; how many threads wait on the condvar for it, and
// how many of them are already notified but have not yet taken the lock back
struct Queue<T> {
    items: VecDeque<Control<T>>,
    waiting: usize,
    notified: usize,
}

impl<T> Queue<T> {
    // a waiter has taken the lock back, notified or not
    fn woken(&mut self) {
        self.waiting -= 1;
        self.notified = self.notified.saturating_sub(1);
    }
}

impl<T> MessagesQueue<T>
where
    T: Send,
{
    pub fn with_capacity(capacity: usize) -> Arc<MessagesQueue<T>> {
        Arc::new(MessagesQueue {
            queue: Mutex::new(Queue {
                items: VecDeque::with_capacity(capacity),
                waiting: 0,
                notified: 0,
            }),
            condvar: Condvar::new(),
        })
    }

    /// Pushes an element to the queue.
    pub fn push(&self, value: T) {
        self.put(Control::Elem(value));
    }

    /// Unblock one thread stuck in pop loop.
    pub fn unblock(&self) {
        self.put(Control::Unblock);
    }

    fn put(&self, item: Control<T>) {
        let mut queue = self.queue.lock().unwrap();
        queue.items.push_back(item);
        let wake = queue.waiting > queue.notified;
        if wake {
            queue.notified += 1;
        }
        drop(queue);
        // nowd patch: notified once the lock is released; woken while it
        // was held, the popping thread went straight back to sleep on the
        // mutex, and woke again at the unlock: two sleeps per request.
        // And only if a thread waits that is not notified yet: std's
        // notify_one is a futex system call every time, a busy popper is
        // not waiting, and a notified one may take a while to run (every
        // push meanwhile made a call for it). A popper counts itself in
        // `waiting` under the lock before it waits; `notified` never exceeds
        // the waiters on their way back, so a waiter still asleep always
        // gets its call.
        if wake {
            self.condvar.notify_one();
        }
    }

    /// Pops an element. Blocks until one is available.
    /// Returns None in case unblock() was issued.
    pub fn pop(&self) -> Option<T> {
        let mut queue = self.queue.lock().unwrap();

        loop {
            match queue.items.pop_front() {
                Some(Control::Elem(value)) => return Some(value),
                Some(Control::Unblock) => return None,
                None => (),
            }

            queue.waiting += 1;
            queue = self.condvar.wait(queue).unwrap();
            queue.woken();
        }
    }

    /// Tries to pop an element without blocking.
    pub fn try_pop(&self) -> Option<T> {
        let mut queue = self.queue.lock().unwrap();
        match queue.items.pop_front() {
            Some(Control::Elem(value)) => Some(value),
            Some(Control::Unblock) | None => None,
        }
    }

    /// Tries to pop an element without blocking
    /// more than the specified timeout duration
    /// or unblock() was issued
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let mut queue = self.queue.lock().unwrap();
        let mut duration = timeout;
        loop {
            match queue.items.pop_front() {
                Some(Control::Elem(value)) => return Some(value),
                Some(Control::Unblock) => return None,
                None => (),
            }
            let now = Instant::now();
            queue.waiting += 1;
            let (_queue, result) = self.condvar.wait_timeout(queue, timeout).unwrap();
            queue = _queue;
            queue.woken();
            let sleep_time = now.elapsed();
            duration = if duration > sleep_time {
                duration - sleep_time
            } else {
                Duration::from_millis(0)
            };
            if result.timed_out()
                || (duration.as_secs() == 0 && duration.subsec_nanos() < 1_000_000)
            {
                return None;
            }
        }
    }
}

// nowd patch: the waiting/notified counting, alone and under contention
#[cfg(test)]
mod tests {
    use super::MessagesQueue;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::channel;
    use std::sync::Arc;
    use std::thread;
    use std::time::{Duration, Instant};

    /// Runs `f` on a thread; fails if it does not end within `limit`, which
    /// is how a lost wake-up shows (a popper asleep for good).
    fn within<R: Send + 'static>(limit: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = channel();
        thread::spawn(move || tx.send(f()));
        rx.recv_timeout(limit)
            .expect("still blocked: a wake-up was lost")
    }

    #[test]
    fn a_push_notifies_only_a_waiter_not_yet_notified() {
        let q = MessagesQueue::<u32>::with_capacity(4);
        // No waiter: nothing to notify.
        q.push(1);
        assert_eq!(q.queue.lock().unwrap().notified, 0);
        // One waiter asleep (counted as a popper counts itself): three
        // pushes before it runs notify it once.
        q.queue.lock().unwrap().waiting = 1;
        q.push(2);
        q.push(3);
        q.push(4);
        assert_eq!(q.queue.lock().unwrap().notified, 1);
        // It takes the lock back: counted out of both.
        q.queue.lock().unwrap().woken();
        let counts = |q: &MessagesQueue<u32>| {
            let queue = q.queue.lock().unwrap();
            (queue.waiting, queue.notified)
        };
        assert_eq!(counts(&q), (0, 0));
        // Woken by a timeout, not a notify: `notified` does not go below zero.
        q.queue.lock().unwrap().waiting = 1;
        q.queue.lock().unwrap().woken();
        assert_eq!(counts(&q), (0, 0));
        q.push(5);
        assert_eq!(counts(&q), (0, 0));
        let got: Vec<u32> = std::iter::from_fn(|| q.try_pop()).collect();
        assert_eq!(got, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_sleeping_popper_is_woken_by_every_push() {
        // Lockstep: the popper is asleep (or on its way to sleep) at each
        // push, the case a skipped notify would leave asleep for good.
        let (to, back) = (
            MessagesQueue::<u32>::with_capacity(1),
            MessagesQueue::<u32>::with_capacity(1),
        );
        let (to2, back2) = (to.clone(), back.clone());
        let popper = thread::spawn(move || {
            while let Some(n) = to2.pop() {
                back2.push(n);
            }
        });
        within(Duration::from_secs(20), move || {
            for n in 0..5_000 {
                to.push(n);
                assert_eq!(back.pop(), Some(n));
            }
            to.unblock();
        });
        popper.join().unwrap();
    }

    #[test]
    fn under_contention_every_item_arrives_once_and_notified_never_exceeds_waiting() {
        const PUSHERS: u32 = 4;
        const EACH: u32 = 5_000;
        const POPPERS: usize = 3;
        let q = MessagesQueue::<u32>::with_capacity(8);
        let done = Arc::new(AtomicBool::new(false));

        // Looks at the counts all along: a notify for a thread that is not
        // waiting (or one already notified) would show as notified > waiting.
        let checker = {
            let (q, done) = (q.clone(), done.clone());
            thread::spawn(move || {
                let (mut looks, mut asleep) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    let queue = q.queue.lock().unwrap();
                    assert!(
                        queue.notified <= queue.waiting,
                        "notified {} > waiting {}",
                        queue.notified,
                        queue.waiting
                    );
                    asleep += (queue.waiting > 0) as u64;
                    drop(queue);
                    looks += 1;
                    thread::yield_now();
                }
                (looks, asleep)
            })
        };
        // Set once every item is pushed: a timeout before it is no end.
        let pushed = Arc::new(AtomicBool::new(false));
        let poppers: Vec<_> = (0..POPPERS)
            .map(|i| {
                let (q, pushed) = (q.clone(), pushed.clone());
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        // One popper waits with a timeout, as nowd's loop does.
                        let item = if i == 0 {
                            match q.pop_timeout(Duration::from_millis(100)) {
                                None if !pushed.load(Ordering::Relaxed) => continue,
                                item => item,
                            }
                        } else {
                            q.pop()
                        };
                        match item {
                            Some(n) => got.push(n),
                            None => return got,
                        }
                    }
                })
            })
            .collect();

        let started = Instant::now();
        let received = within(Duration::from_secs(60), move || {
            let pushers: Vec<_> = (0..PUSHERS)
                .map(|p| {
                    let q = q.clone();
                    thread::spawn(move || {
                        for n in 0..EACH {
                            q.push(p * EACH + n);
                            // Poppers then often find the queue empty and sleep.
                            thread::yield_now();
                        }
                    })
                })
                .collect();
            for p in pushers {
                p.join().unwrap();
            }
            pushed.store(true, Ordering::Relaxed);
            for _ in 0..POPPERS {
                q.unblock();
            }
            let mut all = Vec::new();
            for p in poppers {
                all.extend(p.join().unwrap());
            }
            all
        });
        done.store(true, Ordering::Relaxed);
        let (looks, asleep) = checker.join().unwrap();

        let distinct: HashSet<u32> = received.iter().copied().collect();
        assert_eq!(
            received.len(),
            (PUSHERS * EACH) as usize,
            "items lost or doubled"
        );
        assert_eq!(distinct.len(), received.len(), "an item arrived twice");
        eprintln!(
            "{} items, {} pushers, {} poppers: {:?}; counts looked at {} times, \
             a popper asleep at {} of them",
            received.len(),
            PUSHERS,
            POPPERS,
            started.elapsed(),
            looks,
            asleep
        );
        assert!(asleep > 0, "no popper ever slept: the test proved nothing");
    }
}
