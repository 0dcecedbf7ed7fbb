//! The knowledge-base documents admins upload: their metadata only (the bytes are checked and
//! hashed at upload, then dropped), capped, oldest evicted first. A document is `processing`
//! until `document_processing_ms` after its upload, then `ready`; the status is derived from the
//! clock when asked, so no task runs per document.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::auth::now_secs;

/// The file types an upload may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Markdown,
    Pdf,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Text => "text/plain",
            Kind::Markdown => "text/markdown",
            Kind::Pdf => "application/pdf",
        }
    }

    /// The kind named by a file name's extension, if it is one we take.
    pub fn from_filename(name: &str) -> Option<Self> {
        let (_, ext) = name.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "txt" | "text" => Some(Kind::Text),
            "md" | "markdown" => Some(Kind::Markdown),
            "pdf" => Some(Kind::Pdf),
            _ => None,
        }
    }

    /// The kind named by a part's `Content-Type` (parameters such as `charset` ignored).
    pub fn from_content_type(raw: &str) -> Option<Self> {
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/plain" => Some(Kind::Text),
            "text/markdown" | "text/x-markdown" => Some(Kind::Markdown),
            "application/pdf" => Some(Kind::Pdf),
            _ => None,
        }
    }

    /// Whether `bytes` look like this kind: a PDF starts with `%PDF-`, text is UTF-8.
    pub fn check(self, bytes: &[u8]) -> Result<(), &'static str> {
        match self {
            Kind::Pdf if !bytes.starts_with(b"%PDF-") => {
                Err("the file is not a PDF (no %PDF- header)")
            }
            Kind::Text | Kind::Markdown if std::str::from_utf8(bytes).is_err() => {
                Err("the file is not UTF-8 text")
            }
            _ => Ok(()),
        }
    }
}

/// What an upload tells the store.
pub struct NewDocument {
    pub title: String,
    pub filename: String,
    pub kind: Kind,
    pub size_bytes: usize,
    pub sha256: String,
    pub uploaded_by: u64,
}

struct Document {
    id: String,
    meta: NewDocument,
    created_at: u64,
    ready_at: Instant,
}

impl Document {
    fn to_json(&self, now: Instant) -> Value {
        let status = if now >= self.ready_at {
            "ready"
        } else {
            "processing"
        };
        json!({
            "id": self.id,
            "title": self.meta.title,
            "filename": self.meta.filename,
            "content_type": self.meta.kind.content_type(),
            "size_bytes": self.meta.size_bytes,
            "sha256": self.meta.sha256,
            "status": status,
            "uploaded_by": self.meta.uploaded_by,
            "created_at": self.created_at,
        })
    }
}

pub struct Documents {
    inner: Mutex<DocsInner>,
    cap: usize,
    processing: Duration,
}

#[derive(Default)]
struct DocsInner {
    /// Upload sequence -> document, oldest first (eviction order; lists go newest first).
    by_seq: BTreeMap<u64, Document>,
    by_id: HashMap<String, u64>,
    next_seq: u64,
}

impl Documents {
    pub fn new(cap: usize, processing: Duration) -> Self {
        Self {
            inner: Mutex::new(DocsInner {
                next_seq: 1,
                ..DocsInner::default()
            }),
            cap: cap.max(1),
            processing,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().by_seq.len()
    }

    /// Stores a document (evicting the oldest at the cap) and returns its JSON.
    pub fn insert(&self, meta: NewDocument) -> Result<Value, String> {
        let id = format!("doc_{}", super::auth::random_hex(12)?);
        let now = Instant::now();
        let mut inner = self.inner.lock();
        while inner.by_seq.len() >= self.cap {
            let Some((_, gone)) = inner.by_seq.pop_first() else {
                break;
            };
            inner.by_id.remove(&gone.id);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let doc = Document {
            id: id.clone(),
            meta,
            created_at: now_secs(),
            ready_at: now + self.processing,
        };
        let json = doc.to_json(now);
        inner.by_seq.insert(seq, doc);
        inner.by_id.insert(id, seq);
        Ok(json)
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        let inner = self.inner.lock();
        let seq = inner.by_id.get(id)?;
        inner.by_seq.get(seq).map(|d| d.to_json(Instant::now()))
    }

    /// Removes a document; false if there was none.
    pub fn remove(&self, id: &str) -> bool {
        let mut inner = self.inner.lock();
        match inner.by_id.remove(id) {
            Some(seq) => inner.by_seq.remove(&seq).is_some(),
            None => false,
        }
    }

    /// Documents `offset..offset + limit`, newest first, and the total.
    pub fn page(&self, offset: usize, limit: usize) -> (Vec<Value>, usize) {
        let now = Instant::now();
        let inner = self.inner.lock();
        let items = inner
            .by_seq
            .values()
            .rev()
            .skip(offset)
            .take(limit)
            .map(|d| d.to_json(now))
            .collect();
        (items, inner.by_seq.len())
    }

    /// (documents, of which ready).
    pub fn counts(&self) -> (usize, usize) {
        let now = Instant::now();
        let inner = self.inner.lock();
        let ready = inner.by_seq.values().filter(|d| now >= d.ready_at).count();
        (inner.by_seq.len(), ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(n: usize) -> NewDocument {
        NewDocument {
            title: format!("t{n}"),
            filename: format!("f{n}.txt"),
            kind: Kind::Text,
            size_bytes: n,
            sha256: String::new(),
            uploaded_by: 1,
        }
    }

    #[test]
    fn kinds_come_from_extension_or_content_type() {
        assert_eq!(Kind::from_filename("A.PDF"), Some(Kind::Pdf));
        assert_eq!(Kind::from_filename("notes.md"), Some(Kind::Markdown));
        assert_eq!(Kind::from_filename("x.exe"), None);
        assert_eq!(Kind::from_filename("noext"), None);
        assert_eq!(
            Kind::from_content_type("text/plain; charset=utf-8"),
            Some(Kind::Text)
        );
        assert_eq!(Kind::from_content_type("image/png"), None);
        assert!(Kind::Pdf.check(b"%PDF-1.7 ...").is_ok());
        assert!(Kind::Pdf.check(b"hello").is_err());
        assert!(Kind::Text.check(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn status_moves_to_ready_after_the_delay() {
        let docs = Documents::new(10, Duration::from_millis(50));
        let d = docs.insert(meta(1)).unwrap();
        assert_eq!(d["status"], "processing");
        let id = d["id"].as_str().unwrap().to_owned();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(docs.get(&id).unwrap()["status"], "ready");
        let now = Documents::new(10, Duration::ZERO);
        assert_eq!(now.insert(meta(1)).unwrap()["status"], "ready");
    }

    #[test]
    fn the_store_is_capped_and_pages_newest_first() {
        let docs = Documents::new(3, Duration::ZERO);
        let ids: Vec<String> = (0..5)
            .map(|n| {
                docs.insert(meta(n)).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(docs.len(), 3);
        assert!(docs.get(&ids[0]).is_none() && docs.get(&ids[1]).is_none());
        let (page, total) = docs.page(0, 2);
        assert_eq!(total, 3);
        assert_eq!(page[0]["id"], ids[4].as_str());
        assert!(docs.remove(&ids[4]));
        assert!(!docs.remove(&ids[4]));
        assert_eq!(docs.counts(), (2, 2));
    }
}
