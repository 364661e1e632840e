//! The single-threaded driver (`--stack-driver single`): one loop reads
//! every packet the link has into the stack, fires the stack's and the
//! link's timers, runs the engines, writes what the stack queued to the
//! link, and waits in poll(2) on the link and the controller's bell until
//! the stack's, the link's or an engine's next deadline. The stack is a `RefCell`: nothing else ever
//! touches it.

use std::cell::RefCell;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use super::engines::Engines;
use super::link::UserLink;
use super::PACKET_BURST;
use crate::models::TICK;
use crate::net::Stack;
use crate::sys::eventfd::Bell;
use crate::sys::poll::{PollSet, Want};

pub struct Single {
    pub engines: Engines<RefCell<Stack>>,
    pub link: Box<dyn UserLink>,
    pub bell: Arc<Bell>,
    pub packet: Vec<u8>,
    pub set: PollSet,
}

impl Single {
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.engines.refresh();
            let now = self.engines.now_ms();
            let stack = self.engines.pool.get_mut();
            for _ in 0..PACKET_BURST {
                match self.link.recv(now, &mut self.packet)? {
                    Some(p) => stack.receive(now, p),
                    None => break,
                }
            }
            stack.poll(now);
            self.link.poll(now)?;
            self.engines.serve();
            self.flush()?;
            self.engines.publish(&*self.link);
            if self.engines.finished() {
                return Ok(());
            }
            self.wait()?;
        }
    }

    /// Everything the stack queued goes to the link.
    fn flush(&mut self) -> io::Result<()> {
        let now = self.engines.now_ms();
        let stack = self.engines.pool.get_mut();
        stack.poll(now);
        while let Some(p) = stack.transmit_packet() {
            self.link.send_packet(now, &p)?;
            stack.recycle(p.bytes);
        }
        Ok(())
    }

    fn wait(&mut self) -> io::Result<()> {
        let now = self.engines.now_ms();
        let mut wake = self.engines.lent.now + TICK;
        if let Some(t) = self.engines.pool.get_mut().poll_at(now) {
            wake = wake.min(self.engines.instant(t));
        }
        if let Some(t) = self.link.poll_at() {
            wake = wake.min(self.engines.instant(t));
        }
        let wake = self.engines.wake(wake);
        let read = Want {
            read: true,
            write: false,
        };
        self.set.clear();
        self.set.push(self.link.as_fd(), read);
        let bell_ix = self.set.push(self.bell.as_fd(), read);
        self.set
            .wait(Some(wake.saturating_duration_since(Instant::now())))?;
        if self.set.ready(bell_ix).any() {
            self.bell.clear();
        }
        Ok(())
    }
}
