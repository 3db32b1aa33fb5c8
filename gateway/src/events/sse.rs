//! A minimal Server-Sent Events reader for the backend's feed: bytes in, whole events
//! out (`id:`, `event:`, `data:` lines up to a blank line; comments and `retry:`
//! ignored), as the WHATWG "event stream interpretation" describes.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `id:`, when the event set one.
    pub id: Option<String>,
    /// `event:` (empty means `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Accumulates bytes and yields events; a partial line waits for the next chunk.
#[derive(Debug, Default)]
pub struct SseReader {
    buf: Vec<u8>,
    cur: SseEvent,
    has_data: bool,
}

/// Longest line accepted; a longer one means the peer is not an event stream.
pub const MAX_LINE: usize = 1024 * 1024;

/// The feed sent a line over [`MAX_LINE`].
#[derive(Debug, thiserror::Error)]
#[error("event stream line longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

impl SseReader {
    /// Feeds `chunk`; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl;
            let line = &self.buf[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            self.line(&line, &mut out);
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            let ev = std::mem::take(&mut self.cur);
            if std::mem::take(&mut self.has_data) || !ev.event.is_empty() {
                out.push(ev);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.cur.id = Some(value.to_owned()),
            "event" => self.cur.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.cur.data.push('\n');
                }
                self.cur.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut r = SseReader::default();
        assert!(r
            .push(b": keep-alive\n\nid: 1-1\nevent: cre")
            .unwrap()
            .is_empty());
        let got = r
            .push(b"ated\ndata: {\"a\":1}\n\nevent: reset\r\ndata: x\r\ndata: y\r\n\r\n")
            .unwrap();
        assert_eq!(
            got,
            vec![
                SseEvent {
                    id: Some("1-1".into()),
                    event: "created".into(),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    id: None,
                    event: "reset".into(),
                    data: "x\ny".into()
                },
            ]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut r = SseReader::default();
        assert!(r.push(&vec![b'x'; MAX_LINE + 1]).is_err());
    }
}
