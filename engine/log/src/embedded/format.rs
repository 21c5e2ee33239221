//! The on-disk framing of one record, and scanning a segment's bytes.

use bytes::Bytes;

/// Bytes at the start of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"AIOLOG01";
/// Fixed part of a record after the length field.
pub const FIXED: usize = 40;
/// Length field + checksum field.
pub const PREFIX: usize = 8;

/// The header fields of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Sequence.
    pub seq: u64,
    /// Event-time range.
    pub time_min: i64,
    /// Event-time range.
    pub time_max: i64,
    /// Wall-clock append time, for retention by age and the dedup window.
    pub append_ts: i64,
}

/// Appends the framing of one record to `out`.
pub fn encode(out: &mut Vec<u8>, h: &Header, subject: &str, msg_id: &str, payload: &[u8]) {
    let body_len = FIXED + subject.len() + msg_id.len() + payload.len();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&h.seq.to_le_bytes());
    out.extend_from_slice(&h.time_min.to_le_bytes());
    out.extend_from_slice(&h.time_max.to_le_bytes());
    out.extend_from_slice(&h.append_ts.to_le_bytes());
    out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    out.extend_from_slice(&(msg_id.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(subject.as_bytes());
    out.extend_from_slice(msg_id.as_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + PREFIX..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A record parsed from a buffer; slices refer into the buffer.
#[derive(Debug)]
pub struct Parsed {
    /// Header fields.
    pub header: Header,
    /// Subject.
    pub subject: String,
    /// Message id.
    pub msg_id: String,
    /// Payload range within the buffer.
    pub payload: std::ops::Range<usize>,
    /// Total framed length.
    pub len: usize,
}

/// Why bytes at an offset are not a valid record.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the record needs (the tail of a torn write, or a chunk boundary).
    Short(usize),
    /// Checksum or framing failure.
    Invalid(String),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses the record at `buf[at..]`, verifying its checksum.
pub fn parse(buf: &[u8], at: usize) -> Result<Parsed, Bad> {
    let b = &buf[at..];
    if b.len() < PREFIX {
        return Err(Bad::Short(PREFIX));
    }
    let body_len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if !(FIXED..=(1 << 30)).contains(&body_len) {
        return Err(Bad::Invalid(format!("impossible record length {body_len}")));
    }
    let total = PREFIX + body_len;
    if b.len() < total {
        return Err(Bad::Short(total));
    }
    let crc = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if crc32c::crc32c(&b[PREFIX..total]) != crc {
        return Err(Bad::Invalid("checksum mismatch".into()));
    }
    let h = Header {
        seq: u64_at(b, 8),
        time_min: u64_at(b, 16) as i64,
        time_max: u64_at(b, 24) as i64,
        append_ts: u64_at(b, 32) as i64,
    };
    let sl = u16::from_le_bytes([b[40], b[41]]) as usize;
    let il = u16::from_le_bytes([b[42], b[43]]) as usize;
    let s0 = PREFIX + FIXED;
    if s0 + sl + il > total {
        return Err(Bad::Invalid("subject/id longer than the record".into()));
    }
    let subject = std::str::from_utf8(&b[s0..s0 + sl])
        .map_err(|_| Bad::Invalid("subject not UTF-8".into()))?;
    let msg_id = std::str::from_utf8(&b[s0 + sl..s0 + sl + il])
        .map_err(|_| Bad::Invalid("id not UTF-8".into()))?;
    Ok(Parsed {
        header: h,
        subject: subject.to_string(),
        msg_id: msg_id.to_string(),
        payload: at + s0 + sl + il..at + total,
        len: total,
    })
}

/// Turns a parsed record over a shared buffer into a [`crate::Record`] without copying the payload.
pub fn to_record(p: Parsed, buf: &Bytes) -> crate::Record {
    crate::Record {
        seq: p.header.seq,
        subject: p.subject,
        msg_id: p.msg_id,
        time_min_ms: p.header.time_min,
        time_max_ms: p.header.time_max,
        append_ts_ms: p.header.append_ts,
        payload: buf.slice(p.payload),
    }
}
