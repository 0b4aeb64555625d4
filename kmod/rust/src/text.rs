//! Formatting into a fixed buffer on the stack, for log lines and panic messages: no allocation,
//! and a message that does not fit is cut short.

use core::fmt;

pub struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    pub const fn new() -> Self {
        StackText { buf: [0; N], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                }
                // Full: keep what fits, and say nothing more.
                None => return Ok(()),
            }
        }
        Ok(())
    }
}
