//! Turning child output pipes into line events.
//!
//! Lines are split on `\n` or `\r` (a `\r\n` pair counts once) and emitted without their
//! terminator; an empty line is emitted as `"\n"` so it survives (upstream execd's
//! behaviour, which the SDKs' output formatting expects).

use std::os::fd::OwnedFd;

use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Longest line emitted in one piece; longer lines are cut.
pub const MAX_LINE: usize = 64 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A message from a pipe reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// One line of output.
    Line(Stream, String),
    /// The pipe reached end of file.
    Eof(Stream),
}

/// Incremental line splitter.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    last_cr: bool,
}

impl LineSplitter {
    /// Feed bytes; complete lines are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<String>) {
        for &b in data {
            if b == b'\n' || b == b'\r' {
                if !self.pending.is_empty() {
                    out.push(String::from_utf8_lossy(&self.pending).into_owned());
                    self.pending.clear();
                } else if !(b == b'\n' && self.last_cr) {
                    out.push("\n".to_owned());
                }
                self.last_cr = b == b'\r';
                continue;
            }
            self.last_cr = false;
            self.pending.push(b);
            if self.pending.len() >= MAX_LINE {
                out.push(String::from_utf8_lossy(&self.pending).into_owned());
                self.pending.clear();
            }
        }
    }

    /// Flush an unterminated last line.
    pub fn finish(&mut self, out: &mut Vec<String>) {
        if !self.pending.is_empty() {
            out.push(String::from_utf8_lossy(&self.pending).into_owned());
            self.pending.clear();
        }
    }
}

/// Read `fd` until EOF, sending each line (then `Eof`) to `tx`.
pub fn spawn_line_reader(fd: OwnedFd, stream: Stream, tx: mpsc::Sender<Output>) {
    tokio::spawn(async move {
        let mut rx = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch output pipe");
                let _ = tx.send(Output::Eof(stream)).await;
                return;
            }
        };
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 16 * 1024];
        let mut lines = Vec::new();
        loop {
            let n = rx.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                splitter.finish(&mut lines);
            } else {
                splitter.push(&buf[..n], &mut lines);
            }
            for l in lines.drain(..) {
                if tx.send(Output::Line(stream, l)).await.is_err() {
                    return;
                }
            }
            if n == 0 {
                let _ = tx.send(Output::Eof(stream)).await;
                return;
            }
        }
    });
}

/// Read `fd` until EOF, handing raw chunks to `sink` (background command logs).
pub fn spawn_raw_reader(fd: OwnedFd, mut sink: impl FnMut(&[u8]) + Send + 'static) {
    tokio::spawn(async move {
        let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
            return;
        };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => sink(&buf[..n]),
            }
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn splits_lines_like_upstream() {
        assert_eq!(split(&[b"hi\n"]), vec!["hi"]);
        assert_eq!(split(&[b"a\n\nb"]), vec!["a", "\n", "b"]);
        assert_eq!(split(&[b"a\r\nb\r\n"]), vec!["a", "b"]);
        assert_eq!(split(&[b"10%\r20%\r"]), vec!["10%", "20%"]);
        assert_eq!(split(&[b"par", b"tial\nx"]), vec!["partial", "x"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let long = vec![b'x'; MAX_LINE + 5];
        let out = split(&[&long]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
    }
}
