//! The wire format: each histogram as HdrHistogram's V2 + deflate encoding (what `.hlog` files
//! and every HdrHistogram implementation read), and a `HistogramSet` as a JSON list of
//! `{"t": type, "n": name, "r": base64 raw, "c": base64 corrected or null}`. JSON keeps the
//! container readable by any tool; the histograms inside are compact.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::errors::{Error, ErrorKind};

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Protocol, format!("bad histogram data: {msg}"))
}

/// V2 + deflate bytes of one histogram.
pub fn encode(h: &Histogram<u64>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut out)
        .map_err(|e| bad(format!("{e:?}")))?;
    Ok(out)
}

/// Reads V2 or V2 + deflate bytes; the result auto-resizes so it can absorb merges.
pub fn decode(bytes: &[u8]) -> Result<Histogram<u64>, Error> {
    let mut h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
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
        let mut h = crate::metrics::new_histogram();
        for v in [1u64, 17, 1_000, 123_456, 3_600_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_b64(&encode_b64(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"not a histogram").is_err());
        assert!(decode_b64("!!!").is_err());
        assert!(from_json(b"{").is_err());
    }
}
