//! A slab of connections addressed by epoll tokens. A token carries the
//! slot's generation so that an event or timer for a closed connection can
//! never reach the connection that reused its slot.

/// Index and generation packed into an epoll `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

impl Token {
    fn new(index: usize, generation: u32) -> Token {
        Token(((generation as u64) << 32) | index as u64)
    }
    pub fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reserves a slot and returns its token; the value is built with it.
    pub fn insert_with(&mut self, f: impl FnOnce(Token) -> T) -> Token {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        // Tokens must stay below the listener/bell tokens (u64::MAX - n),
        // and within 60 bits, the room an io_uring `user_data` leaves
        // beside its operation kind.
        slot.generation = (slot.generation + 1) & 0x0fff_ffff;
        let token = Token::new(index, slot.generation);
        slot.value = Some(f(token));
        self.len += 1;
        token
    }

    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        match self.slots.get_mut(token.index()) {
            Some(s) if s.generation == token.generation() => s.value.as_mut(),
            _ => None,
        }
    }

    pub fn remove(&mut self, token: Token) -> Option<T> {
        let slot = self.slots.get_mut(token.index())?;
        if slot.generation != token.generation() {
            return None;
        }
        let v = slot.value.take()?;
        self.free.push(token.index());
        self.len -= 1;
        Some(v)
    }

    /// Rebuilds a value from itself in place, keeping its token (for a
    /// value that must be taken apart by move). False when the token is
    /// stale.
    pub fn replace_with(&mut self, token: Token, f: impl FnOnce(T) -> T) -> bool {
        let Some(slot) = self.slots.get_mut(token.index()) else {
            return false;
        };
        if slot.generation != token.generation() {
            return false;
        }
        match slot.value.take() {
            Some(v) => {
                slot.value = Some(f(v));
                true
            }
            None => false,
        }
    }

    /// Tokens of all occupied slots.
    pub fn tokens(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| Token::new(i, s.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_tokens_do_not_reach_a_reused_slot() {
        let mut s = Slab::default();
        let a = s.insert_with(|_| "a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert_with(|_| "b");
        assert_eq!(a.index(), b.index());
        assert!(s.get_mut(a).is_none());
        assert_eq!(s.get_mut(b).copied(), Some("b"));
        assert_eq!(s.tokens(), vec![b]);
        assert!(!s.replace_with(a, |v| v));
        assert!(s.replace_with(b, |v| if v == "b" { "c" } else { v }));
        assert_eq!(s.get_mut(b).copied(), Some("c"));
    }
}
