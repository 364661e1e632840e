//! Settings a reload replaces while the server runs: one value shared by
//! every worker ([`Live`]) and each loop's own copy of it ([`Current`]).
//!
//! A reload puts a whole new value in force at once, so a worker sees the
//! old settings or the new ones, never half of each. The cost on the hot
//! path is one atomic load per check; the lock is taken only by a reload
//! and by the first check after it.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The value in force, replaced whole by a reload.
#[derive(Debug, Default)]
pub struct Live<T> {
    generation: AtomicU64,
    current: Mutex<Arc<T>>,
}

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live {
            generation: AtomicU64::new(0),
            current: Mutex::new(Arc::new(value)),
        }
    }

    /// Puts a new value in force.
    pub fn replace(&self, value: T) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self) -> Arc<T> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// One loop's copy of a [`Live`] value and the generation it belongs to.
#[derive(Debug)]
pub struct Current<T> {
    generation: u64,
    value: Arc<T>,
}

impl<T> Current<T> {
    pub fn new(live: &Live<T>) -> Current<T> {
        // The generation first: a reload in between is then seen by the
        // next refresh instead of being missed.
        let generation = live.generation();
        Current {
            generation,
            value: live.get(),
        }
    }

    /// Takes the value in force if a reload replaced it; says whether it did.
    pub fn refresh(&mut self, live: &Live<T>) -> bool {
        let generation = live.generation();
        if generation == self.generation {
            return false;
        }
        self.value = live.get();
        self.generation = generation;
        true
    }

    /// The value itself, to keep beyond this loop's turn.
    pub fn shared(&self) -> &Arc<T> {
        &self.value
    }
}

impl<T> Deref for Current<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_follows_replacements_whole() {
        let live = Live::new((1, "one"));
        let mut mine = Current::new(&live);
        assert!(!mine.refresh(&live));
        assert_eq!(*mine, (1, "one"));
        live.replace((2, "two"));
        live.replace((3, "three"));
        assert_eq!(*mine, (1, "one"), "unchanged until refreshed");
        assert!(mine.refresh(&live));
        assert_eq!(*mine, (3, "three"));
        assert!(!mine.refresh(&live));
    }
}
