//! The wire format: each histogram as HdrHistogram's V2 + deflate encoding (what `.hlog` files
//! and every HdrHistogram implementation read), and a `HistogramSet` as a JSON list of
//! `{"t": type, "n": name, "r": base64 raw, "c": base64 corrected or null}`. JSON keeps the
//! container readable by any tool; the histograms inside are compact.

use std::cell::RefCell;
use std::io::Read;

use base64::Engine;
use flate2::{Compress, Compression, FlushCompress, Status};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::errors::{Error, ErrorKind};

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Protocol, format!("bad histogram data: {msg}"))
}

/// V2 + deflate bytes of one histogram, as HdrHistogram's `V2DeflateSerializer` writes them,
/// without its cost per call: it builds a new deflate state every time (about 300 KB to allocate
/// and zero), which was most of the `.hlog`'s cost with thousands of request names a second.
/// Here one thread-local serializer and deflate state are reused, and a payload too small to
/// gain from compression goes in stored deflate blocks (RFC 1951, 3.2.4), which every inflater
/// reads: resetting a deflate state zeroes as much as making one.
pub fn encode(h: &Histogram<u64>) -> Result<Vec<u8>, Error> {
    thread_local! {
        static V2: RefCell<(V2Serializer, Vec<u8>)> = RefCell::new((V2Serializer::new(), Vec::new()));
    }
    V2.with_borrow_mut(|(v2, plain)| {
        plain.clear();
        v2.serialize(h, plain).map_err(|e| bad(format!("{e:?}")))?;
        envelope(plain)
    })
}

/// The same bytes for a histogram kept as sorted `(lowest equivalent value, count)` pairs of
/// 3-significant-digit buckets from 1 (`stats::hist`'s sparse form), encoded from the pairs: the
/// V2 form lists every count up to the largest value's, which for one name's second of requests
/// at 50 ms meant building and walking 7,000 counts to write three. Byte for byte what
/// `V2Serializer` writes for a histogram of the same counts and `high` (checked in the tests).
pub fn encode_pairs(pairs: &[(u64, u64)], high: u64) -> Result<Vec<u8>, Error> {
    let mut plain = Vec::with_capacity(V2_HEADER + 4 * pairs.len() + 8);
    plain.extend_from_slice(&V2_COOKIE.to_be_bytes());
    plain.extend_from_slice(&[0; 4]); // the payload's length, below
    plain.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    plain.extend_from_slice(&u32::from(crate::hdr::SIGFIG).to_be_bytes());
    plain.extend_from_slice(&1u64.to_be_bytes()); // lowest discernible value
    plain.extend_from_slice(&high.max(2).to_be_bytes());
    plain.extend_from_slice(&1f64.to_be_bytes()); // integer to double ratio
    let mut next = 0usize; // the first index not written yet
    for &(value, count) in pairs.iter().filter(|p| p.1 > 0) {
        let index = index_of(value);
        if index < next {
            return Err(bad("pairs out of order"));
        }
        match index - next {
            0 => {}
            1 => leb128(0, &mut plain),
            zeros => leb128(zig_zag(-(zeros as i64)), &mut plain),
        }
        leb128(zig_zag(i64::try_from(count).map_err(bad)?), &mut plain);
        next = index + 1;
    }
    if next == 0 {
        leb128(0, &mut plain); // an empty histogram: its one count, 0, as V2Serializer writes it
    }
    let len = u32::try_from(plain.len() - V2_HEADER).map_err(bad)?;
    plain[4..8].copy_from_slice(&len.to_be_bytes());
    envelope(&plain)
}

/// Where HdrHistogram keeps `value`'s count, for 3 significant digits from 1: 2,048 sub-buckets,
/// half of them in each bucket after the first (`Histogram::index_for`, which is private).
fn index_of(value: u64) -> usize {
    const HALF_MAGNITUDE: u32 = 10;
    const HALF: u64 = 1 << HALF_MAGNITUDE;
    const MASK: u64 = (HALF << 1) - 1;
    let bucket = (64 - HALF_MAGNITUDE - 1) - (value | MASK).leading_zeros();
    let sub_bucket = value >> bucket;
    (((u64::from(bucket) + 1) << HALF_MAGNITUDE) + sub_bucket - HALF) as usize
}

fn zig_zag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// LEB128, as HdrHistogram's V2 writes its counts (identical to its 9-byte form below 2^56).
fn leb128(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// V2 bytes in the V2-deflate envelope (cookie, length, zlib stream).
fn envelope(plain: &[u8]) -> Result<Vec<u8>, Error> {
    thread_local! {
        static DEFLATE: RefCell<Option<Compress>> = const { RefCell::new(None) };
    }
    DEFLATE.with_borrow_mut(|deflate| {
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        out.extend_from_slice(&V2_DEFLATE_COOKIE.to_be_bytes());
        out.extend_from_slice(&[0; 4]); // the length, below
        if plain.len() <= STORED_MAX {
            zlib_stored(plain, &mut out);
        } else {
            let z = deflate.get_or_insert_with(|| Compress::new(Compression::default(), true));
            z.reset();
            zlib_deflate(z, plain, &mut out)?;
        }
        let len = u32::try_from(out.len() - 8).map_err(bad)?;
        out[4..8].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    })
}

/// V2 payloads up to this size are stored, not compressed: a name's histogram of one second is
/// typically a few dozen bytes.
const STORED_MAX: usize = 1024;

/// A zlib stream (RFC 1950) of `data` in stored blocks.
fn zlib_stored(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x78, 0x01]); // deflate, 32 KiB window; (0x7801 % 31 == 0)
    let mut blocks = data.chunks(u16::MAX as usize).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none())); // BFINAL on the last, BTYPE 00
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler2::adler32_slice(data).to_be_bytes());
}

fn zlib_deflate(z: &mut Compress, data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let start = z.total_in();
    loop {
        out.reserve(data.len() / 2 + 64);
        let done = (z.total_in() - start) as usize;
        match z
            .compress_vec(&data[done..], out, FlushCompress::Finish)
            .map_err(bad)?
        {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError => {}
        }
    }
}

// HdrHistogram's V2 cookies (64-bit counts) and header size.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
const V2_HEADER: usize = 40;
/// The most a deflated histogram may expand to: a full 3-digit histogram from 1 µs to an hour
/// takes well under 1 MB.
const MAX_INFLATED: u64 = 64 << 20;

fn be_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The uncompressed V2 form of `bytes`, after checking that each length the data claims is there:
/// the deserializer allocates what a header claims, so 40 bytes could ask for 4 GB.
fn checked_v2(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    let cookie = be_u32(bytes, 0).ok_or_else(|| bad("too short"))?;
    let bytes = match cookie as u32 {
        V2_COOKIE => std::borrow::Cow::Borrowed(bytes),
        V2_DEFLATE_COOKIE => {
            let len = be_u32(bytes, 4).ok_or_else(|| bad("too short"))?;
            let deflated = bytes
                .get(8..8 + len)
                .ok_or_else(|| bad("shorter than its length"))?;
            let mut inflated = Vec::new();
            flate2::read::ZlibDecoder::new(deflated)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut inflated)
                .map_err(bad)?;
            if inflated.len() as u64 > MAX_INFLATED {
                return Err(bad("inflates past 64 MB"));
            }
            std::borrow::Cow::Owned(inflated)
        }
        other => return Err(bad(format!("unknown cookie {other:#x}"))),
    };
    if be_u32(&bytes, 0) != Some(V2_COOKIE as usize) {
        return Err(bad("the deflated data is not a V2 histogram"));
    }
    let payload = be_u32(&bytes, 4).ok_or_else(|| bad("too short"))?;
    if bytes.len() < V2_HEADER || payload > bytes.len() - V2_HEADER {
        return Err(bad("shorter than its payload length"));
    }
    Ok(bytes)
}

/// Reads V2 or V2 + deflate bytes; the result auto-resizes so it can absorb merges.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, Error> {
    let v2 = checked_v2(bytes)?;
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &v2[..])
        .map_err(|e| bad(format!("{e:?}")))?;
    h.auto(true);
    Ok(h)
}

pub fn encode_b64(h: &Histogram<u64>) -> Result<String, Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(encode(h)?))
}

pub fn decode_b64(text: &str) -> Result<Histogram<u64>, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(bad)?;
    decode(&bytes)
}

#[derive(Serialize, Deserialize)]
pub struct WireEntry {
    pub t: String,
    pub n: String,
    pub r: String,
    pub c: Option<String>,
}

pub fn to_json(entries: &[WireEntry]) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(entries).map_err(bad)
}

pub fn from_json(bytes: &[u8]) -> Result<Vec<WireEntry>, Error> {
    serde_json::from_slice(bytes).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_count() {
        let mut h = crate::hdr::new_histogram();
        for v in [1u64, 17, 1_000, 123_456, 3_600_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_b64(&encode_b64(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn small_and_large_encodings_read_back_and_through_hdrhistograms_own_reader() {
        let small = {
            let mut h = crate::hdr::new_histogram();
            h.record_n(1_234, 3).unwrap();
            h
        };
        let large = {
            let mut h = crate::hdr::new_histogram();
            for v in 1..20_000u64 {
                h.record(v * 997 % 3_000_000 + 1).unwrap();
            }
            h
        };
        for h in [small, large, crate::hdr::new_histogram()] {
            for _ in 0..3 {
                // again and again: the reused state must not carry anything over
                let bytes = encode(&h).unwrap();
                assert_eq!(decode(&bytes).unwrap(), h);
                let theirs: Histogram<u64> =
                    Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                assert_eq!(theirs, h);
            }
        }
    }

    #[test]
    fn pairs_encode_byte_for_byte_as_hdrhistograms_serializer() {
        let shape = crate::hdr::new_histogram();
        let mut x = 88_172_645_463_325_252u64;
        for (n, spread) in [
            (0usize, 10u64),
            (1, 10),
            (3, 2_000),
            (40, 70_000),
            (300, 3_600_000_000),
        ] {
            let mut values: Vec<u64> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    1 + x % spread
                })
                .collect();
            values.extend(
                [1, 2, 2047, 2048, 2049, 4095, 4096]
                    .into_iter()
                    .take(n.min(7)),
            );
            let mut pairs: std::collections::BTreeMap<u64, u64> = Default::default();
            for v in &values {
                *pairs.entry(shape.lowest_equivalent(*v)).or_default() += 1;
            }
            let pairs: Vec<(u64, u64)> = pairs.into_iter().collect();
            let high = pairs
                .last()
                .map_or(2, |p| shape.highest_equivalent(p.0))
                .max(2);
            let mut dense = Histogram::<u64>::new_with_bounds(1, high, 3).unwrap();
            for (v, c) in &pairs {
                dense.record_n(*v, *c).unwrap();
            }
            let ours = encode_pairs(&pairs, high).unwrap();
            assert_eq!(ours, encode(&dense).unwrap(), "{n} values up to {spread}");
            let back = decode(&ours).unwrap();
            assert_eq!(back.len(), values.len() as u64);
            for (v, c) in &pairs {
                assert_eq!(back.count_at(*v), *c);
            }
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"not a histogram").is_err());
        assert!(decode_b64("!!!").is_err());
        assert!(from_json(b"{").is_err());
    }

    fn header(cookie: u32, payload: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&cookie.to_be_bytes());
        b.extend_from_slice(&payload.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&1u64.to_be_bytes());
        b.extend_from_slice(&2u64.to_be_bytes());
        b.extend_from_slice(&1f64.to_be_bytes());
        b
    }

    #[test]
    fn lengths_the_data_does_not_have_are_refused_before_any_allocation() {
        // 40 bytes that claimed a 4 GB payload took 3 s and 4 GB to refuse.
        let e = decode(&header(V2_COOKIE, u32::MAX)).unwrap_err();
        assert!(e.message.contains("payload length"), "{}", e.message);
        let mut deflated = V2_DEFLATE_COOKIE.to_be_bytes().to_vec();
        deflated.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&deflated).unwrap_err().message.contains("shorter"));
        assert!(decode(&[1, 2]).is_err());
        assert!(decode(&header(0xdead_beef, 0)).is_err());
    }
}
