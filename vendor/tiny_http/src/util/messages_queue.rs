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

// nowd patch: the queue, and how many threads wait on the condvar for it
struct Queue<T> {
    items: VecDeque<Control<T>>,
    waiting: usize,
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
        let waiting = queue.waiting > 0;
        drop(queue);
        // nowd patch: notified once the lock is released; woken while it
        // was held, the popping thread went straight back to sleep on the
        // mutex, and woke again at the unlock: two sleeps per request.
        // And only if a thread waits: std's notify_one is a futex system
        // call every time, and a busy popper is not waiting. A popper
        // counts itself in `waiting` under the lock before it waits, so
        // none is missed.
        if waiting {
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
            queue.waiting -= 1;
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
            queue.waiting -= 1;
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
