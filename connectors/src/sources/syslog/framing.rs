//! Splitting a TCP byte stream into syslog frames (RFC 6587).
//!
//! Two framings share one connection, detected per frame by its first byte:
//! - **octet counting** (`<len> <msg>`): a frame that starts with `[1-9][0-9]{0,9} ` is `len`
//!   bytes after the space;
//! - **non-transparent framing** (LF): anything else runs to the next `\n` (a trailing `\r` is
//!   dropped). A message never starts with a digit (it starts with `<PRI>`), so a line that does
//!   and whose digits are not followed by a space (`2026-12-04 …`) is an LF line.
//!
//! A frame longer than `max_frame` bytes is **cut**: its first `max_frame` bytes are returned as a
//! frame marked `truncated`, the rest of it (up to the next LF, or the remaining octets) is
//! skipped as it arrives, never buffered. So the bytes a connection holds are at most
//! `max_frame` plus a length header plus one read, whatever the sender does.

use std::ops::Range;

/// Longest octet count accepted: 10 digits (RFC 6587 does not bound it; a larger number cannot
/// be a real frame). A header with more digits is read as an LF line.
const MAX_LEN_DIGITS: usize = 10;

/// One frame found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's bytes in the buffer given to [`Framer::next_frame`].
    pub range: Range<usize>,
    /// Whether the frame was longer than the limit and cut to it.
    pub truncated: bool,
}

/// What remains to be skipped of a frame that was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    /// Nothing: the next byte starts a frame.
    Nothing,
    /// The rest of an LF line, up to and including the next `\n`.
    ToLf,
    /// The rest of an octet-counted frame.
    Octets(u64),
}

/// The framing state of one connection; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Framer {
    max_frame: usize,
    skip: Skip,
}

impl Framer {
    /// A framer cutting frames at `max_frame` bytes (at least 1).
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            max_frame: max_frame.max(1),
            skip: Skip::Nothing,
        }
    }

    /// The next complete frame in `buf[*pos..]`, advancing `*pos` past it (and past anything
    /// skipped). `None` when more input is needed; then `*pos` may still have advanced over
    /// skipped bytes. With `eof`, an unterminated last LF line is returned as a frame (as
    /// rsyslog does) and an incomplete octet-counted frame is returned as far as it came, marked
    /// truncated. Empty lines are skipped. Callers drop `buf[..*pos]` once they have used the
    /// frames.
    pub fn next_frame(&mut self, buf: &[u8], pos: &mut usize, eof: bool) -> Option<Frame> {
        loop {
            let rest = buf.get(*pos..).unwrap_or_default();
            match self.skip {
                Skip::ToLf => match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        *pos += i + 1;
                        self.skip = Skip::Nothing;
                    }
                    None => {
                        *pos += rest.len();
                        return None;
                    }
                },
                Skip::Octets(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                    *pos += take;
                    let left = n - take as u64;
                    if left > 0 {
                        self.skip = Skip::Octets(left);
                        return None;
                    }
                    self.skip = Skip::Nothing;
                }
                Skip::Nothing => {
                    // Separators between frames (a sender that ends octet-counted frames with
                    // LF, blank lines) are not frames.
                    let lead = rest
                        .iter()
                        .take_while(|b| matches!(b, b'\n' | b'\r'))
                        .count();
                    if lead > 0 {
                        *pos += lead;
                        continue;
                    }
                    if rest.is_empty() {
                        return None;
                    }
                    return match octet_header(rest) {
                        Header::Counted { header, len } => {
                            self.octet_frame(rest, pos, header, len, eof)
                        }
                        Header::Incomplete if !eof => None,
                        Header::Incomplete | Header::NotCounted => self.lf_frame(rest, pos, eof),
                    };
                }
            }
        }
    }

    fn octet_frame(
        &mut self,
        rest: &[u8],
        pos: &mut usize,
        header: usize,
        len: u64,
        eof: bool,
    ) -> Option<Frame> {
        let start = *pos + header;
        let body = &rest[header..];
        let max = self.max_frame as u64;
        if len <= max {
            // `len` fits in usize here (it is at most max_frame).
            let n = len as usize;
            if body.len() >= n {
                *pos = start + n;
                return Some(Frame {
                    range: start..start + n,
                    truncated: false,
                });
            }
            if eof {
                *pos = start + body.len();
                return Some(Frame {
                    range: start..start + body.len(),
                    truncated: true,
                });
            }
            return None;
        }
        // Longer than allowed: return the first max_frame bytes, skip the rest as it arrives.
        if body.len() >= self.max_frame {
            *pos = start + self.max_frame;
            self.skip = Skip::Octets(len - max);
            return Some(Frame {
                range: start..start + self.max_frame,
                truncated: true,
            });
        }
        if eof {
            *pos = start + body.len();
            return Some(Frame {
                range: start..start + body.len(),
                truncated: true,
            });
        }
        None
    }

    fn lf_frame(&mut self, rest: &[u8], pos: &mut usize, eof: bool) -> Option<Frame> {
        let start = *pos;
        let window = &rest[..rest.len().min(self.max_frame + 1)];
        if let Some(i) = window.iter().position(|&b| b == b'\n')
            && i <= self.max_frame
        {
            *pos = start + i + 1;
            let end = if i > 0 && rest[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            return Some(Frame {
                range: start..start + end,
                truncated: false,
            });
        }
        if rest.len() > self.max_frame {
            *pos = start + self.max_frame;
            self.skip = Skip::ToLf;
            return Some(Frame {
                range: start..start + self.max_frame,
                truncated: true,
            });
        }
        if eof {
            *pos = start + rest.len();
            return Some(Frame {
                range: start..start + rest.len(),
                truncated: false,
            });
        }
        None
    }
}

/// What the start of a frame says about its framing.
enum Header {
    /// `<len> `: the header's length (digits and space) and `len`.
    Counted { header: usize, len: u64 },
    /// Only digits so far: more input decides.
    Incomplete,
    /// An LF line.
    NotCounted,
}

fn octet_header(rest: &[u8]) -> Header {
    if !matches!(rest.first(), Some(b'1'..=b'9')) {
        return Header::NotCounted;
    }
    let mut len: u64 = 0;
    for (i, &b) in rest.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < MAX_LEN_DIGITS => len = len * 10 + u64::from(b - b'0'),
            b' ' => return Header::Counted { header: i + 1, len },
            _ => return Header::NotCounted,
        }
    }
    Header::Incomplete
}
