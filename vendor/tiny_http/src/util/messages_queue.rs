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
