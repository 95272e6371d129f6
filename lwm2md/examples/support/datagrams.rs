//! An in-memory datagram channel for an OpenSSL DTLS server in the benchmarks: one
//! `write` is one datagram out, one `read` one datagram in, an empty queue `WouldBlock`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

#[derive(Default)]
pub struct Datagrams {
    pub incoming: VecDeque<Vec<u8>>,
    pub outgoing: VecDeque<Vec<u8>>,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let d = self.incoming.pop_front().ok_or(io::ErrorKind::WouldBlock)?;
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
