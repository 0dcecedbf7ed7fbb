//! The socket as tungstenite uses it, watched from outside tungstenite:
//! - how many bytes tungstenite is waiting to write and the socket will not take (a server that
//!   does not read), which its own API does not tell;
//! - which frames the server has sent, so that an error can say which frame it was about
//!   (tungstenite reports invalid UTF-8 the same way in a text message and in a close reason).
//!
//! Both are read from the bytes passing through: one header parse per frame, payloads skipped.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A plain or TLS socket; one indirection per read is nothing next to a syscall.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Watched {
    io: Box<dyn Io>,
    unsent: Arc<AtomicUsize>,
    frames: Frames,
}

impl Watched {
    pub fn new(io: Box<dyn Io>) -> Self {
        Watched {
            io,
            unsent: Arc::new(AtomicUsize::new(0)),
            frames: Frames::default(),
        }
    }

    /// Bytes tungstenite last tried to write and the socket did not take: its whole out buffer,
    /// since it always writes all of it at once. Zero once the socket takes everything.
    pub fn unsent(&self) -> Arc<AtomicUsize> {
        self.unsent.clone()
    }

    pub fn frames(&self) -> &Frames {
        &self.frames
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            this.frames.feed(&buf.filled()[before..]);
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        let left = match &poll {
            Poll::Pending => buf.len(),
            Poll::Ready(Ok(n)) => buf.len().saturating_sub(*n),
            Poll::Ready(Err(_)) => 0,
        };
        this.unsent.store(left, Ordering::Relaxed);
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The server's frames, from the first byte after the upgrade response. Counts the data
/// messages the server completed before its first close frame, which is all it takes to tell a
/// close frame's fault from a text message's: tungstenite fails at the first bad frame, in order.
#[derive(Default)]
pub struct Frames {
    state: State,
    /// Frames of data messages with FIN set, i.e. complete text or binary messages.
    messages: u64,
    /// `messages` when the first close frame began.
    messages_before_close: Option<u64>,
}

enum State {
    /// In the HTTP response: how many bytes of its final "\r\n\r\n" have been seen.
    Crlf(u8),
    /// Collecting a frame header (at most 14 bytes).
    Header { bytes: [u8; 14], have: usize },
    /// Skipping this many payload bytes.
    Payload(u64),
}

impl Default for State {
    fn default() -> Self {
        State::Crlf(0)
    }
}

impl Frames {
    /// True if the first frame the server has sent and tungstenite has not yet delivered as a
    /// message is a close frame, given how many data messages were delivered.
    pub fn at_close(&self, delivered: u64) -> bool {
        self.messages_before_close == Some(delivered)
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Crlf(seen) => {
                    let want = b"\r\n\r\n"[*seen as usize];
                    *seen = if bytes[0] == want {
                        *seen + 1
                    } else if bytes[0] == b'\r' {
                        1
                    } else {
                        0
                    };
                    bytes = &bytes[1..];
                    if *seen == 4 {
                        self.state = State::Header {
                            bytes: [0; 14],
                            have: 0,
                        };
                    }
                }
                State::Header { bytes: head, have } => {
                    head[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    if let Some((len, fin, opcode)) = parse_header(&head[..*have]) {
                        if opcode == 8 && self.messages_before_close.is_none() {
                            self.messages_before_close = Some(self.messages);
                        }
                        if fin && opcode <= 2 {
                            self.messages += 1;
                        }
                        self.state = State::Payload(len);
                    }
                }
                State::Payload(left) => {
                    let take = (*left).min(bytes.len() as u64);
                    *left -= take;
                    bytes = &bytes[take as usize..];
                }
            }
            if let State::Payload(0) = self.state {
                self.state = State::Header {
                    bytes: [0; 14],
                    have: 0,
                };
            }
        }
    }
}

/// `(payload length, FIN, opcode)` once `head` holds a whole frame header (RFC 6455, 5.2).
fn parse_header(head: &[u8]) -> Option<(u64, bool, u8)> {
    if head.len() < 2 {
        return None;
    }
    let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
    let mask = if head[1] & 0x80 != 0 { 4 } else { 0 };
    let (ext, short) = match head[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    if head.len() < 2 + ext + mask {
        return None;
    }
    let len = short.unwrap_or_else(|| {
        head[2..2 + ext]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Some((len, fin, opcode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        match len {
            0..=125 => f.push(len as u8),
            126..=65535 => {
                f.push(126);
                f.extend((len as u16).to_be_bytes());
            }
            _ => {
                f.push(127);
                f.extend((len as u64).to_be_bytes());
            }
        }
        f.extend(std::iter::repeat_n(b'x', len));
        f
    }

    fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut s = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        for f in frames {
            s.extend(f);
        }
        s
    }

    #[test]
    fn counts_messages_before_the_close_in_any_chunking() {
        let s = stream(&[
            frame(true, 1, 5),
            frame(false, 2, 300),
            frame(true, 9, 4), // a ping between fragments
            frame(true, 0, 70_000),
            frame(true, 8, 7),
            frame(true, 1, 3),
        ]);
        for chunk in [1, 2, 3, 7, 13, 4096, s.len()] {
            let mut f = Frames::default();
            for c in s.chunks(chunk) {
                f.feed(c);
            }
            assert_eq!(f.messages_before_close, Some(2), "chunks of {chunk}");
            assert!(f.at_close(2) && !f.at_close(1));
            assert_eq!(f.messages, 3);
        }
    }

    #[test]
    fn no_close_seen_means_not_at_close() {
        let mut f = Frames::default();
        f.feed(&stream(&[frame(true, 1, 2)]));
        assert!(!f.at_close(0) && !f.at_close(1));
    }

    #[test]
    fn masked_headers_are_parsed() {
        assert_eq!(parse_header(&[0x81, 0x85]), None);
        assert_eq!(parse_header(&[0x81, 0x85, 0, 0, 0, 0]), Some((5, true, 1)));
        assert_eq!(parse_header(&[0x02, 126, 1, 0]), Some((256, false, 2)));
    }
}
