//! The knowledge-base documents admins upload: their metadata, the start of their text and the
//! words they are found by (the bytes are checked and hashed at upload, then dropped), capped,
//! oldest evicted first. A document is `processing` until `document_processing_ms` after its
//! upload, then `ready`, and from then on the chat cites it; the status is derived from the clock
//! when asked, so no task runs per document.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::auth::now_secs;
use super::kb::{self, Hit, Source, Uploaded};

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
    /// The document's text (txt and md; empty for a PDF, which is found by its title).
    pub text: String,
}

struct Document {
    id: String,
    meta: NewDocument,
    created_at: u64,
    ready_at: Instant,
    /// What the chat cites.
    entry: Arc<Uploaded>,
    /// The words this document is indexed under.
    words: Vec<String>,
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
    /// Word -> the documents found by it, in upload order.
    index: HashMap<String, Vec<u64>>,
    next_seq: u64,
}

impl DocsInner {
    fn remove_seq(&mut self, seq: u64) -> Option<Document> {
        let doc = self.by_seq.remove(&seq)?;
        self.by_id.remove(&doc.id);
        for w in &doc.words {
            if let Some(seqs) = self.index.get_mut(w) {
                seqs.retain(|s| *s != seq);
                if seqs.is_empty() {
                    self.index.remove(w);
                }
            }
        }
        Some(doc)
    }
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
        let words = kb::index_words(&meta.title, &meta.text);
        let entry = Arc::new(Uploaded {
            id: id.clone(),
            title: meta.title.clone(),
            text: meta.text.chars().take(kb::UPLOADED_TEXT_CHARS).collect(),
        });
        let mut inner = self.inner.lock();
        while inner.by_seq.len() >= self.cap {
            let Some(oldest) = inner.by_seq.keys().next().copied() else {
                break;
            };
            inner.remove_seq(oldest);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        for w in &words {
            inner.index.entry(w.clone()).or_default().push(seq);
        }
        let doc = Document {
            id: id.clone(),
            meta: NewDocument {
                text: String::new(),
                ..meta
            },
            created_at: now_secs(),
            ready_at: now + self.processing,
            entry,
            words,
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
        match inner.by_id.get(id).copied() {
            Some(seq) => inner.remove_seq(seq).is_some(),
            None => false,
        }
    }

    /// The ready documents found by some of `words`, with how many, in upload order.
    pub fn matching(&self, words: &[String]) -> Vec<Hit> {
        let now = Instant::now();
        let inner = self.inner.lock();
        let mut scores: BTreeMap<u64, usize> = BTreeMap::new();
        for w in words {
            for seq in inner.index.get(w).into_iter().flatten() {
                *scores.entry(*seq).or_default() += 1;
            }
        }
        scores
            .into_iter()
            .filter_map(|(seq, score)| {
                let doc = inner.by_seq.get(&seq)?;
                (now >= doc.ready_at).then(|| Hit {
                    source: Source::Uploaded(doc.entry.clone()),
                    score,
                })
            })
            .collect()
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
            text: format!("shared words{n}"),
        }
    }

    #[test]
    fn ready_documents_are_found_by_their_words_until_removed_or_evicted() {
        let docs = Documents::new(2, Duration::ZERO);
        let w = |s: &str| vec![s.to_string()];
        let id1 = docs
            .insert(meta(1))
            .map(|j| j["id"].as_str().unwrap_or_default().to_owned());
        let id1 = id1.unwrap_or_default();
        docs.insert(meta(2)).ok();
        assert_eq!(docs.matching(&w("shared")).len(), 2);
        assert_eq!(docs.matching(&w("words1"))[0].id(), id1);
        assert!(docs.matching(&w("nothing")).is_empty());
        assert!(docs.remove(&id1));
        assert!(docs.matching(&w("words1")).is_empty());
        // the third evicts the second, whose words go with it
        docs.insert(meta(3)).ok();
        docs.insert(meta(4)).ok();
        assert!(docs.matching(&w("words2")).is_empty());
        assert_eq!(docs.matching(&w("shared")).len(), 2);
        assert_eq!(docs.inner.lock().index.get("words2"), None);
    }

    #[test]
    fn processing_documents_are_not_cited_yet() {
        let docs = Documents::new(10, Duration::from_secs(3600));
        docs.insert(meta(1)).ok();
        assert!(docs.matching(&["shared".to_string()]).is_empty());
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
