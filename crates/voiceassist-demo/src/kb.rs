//! The built-in knowledge base the chat answers from, and its matcher. Everything here is
//! deterministic: the same query always gets the same answer and citations.

/// One knowledge-base article.
pub struct Entry {
    pub id: &'static str,
    pub title: &'static str,
    /// Lower-case words that make a query match this entry.
    pub keywords: &'static [&'static str],
    pub text: &'static str,
}

pub const ENTRIES: &[Entry] = &[
    Entry {
        id: "kb-001",
        title: "What VoiceAssist is",
        keywords: &["voiceassist", "overview", "about", "product", "assistant"],
        text: "VoiceAssist is a voice-first assistant that answers questions from your own knowledge base, by chat or by voice, and cites the documents it used.",
    },
    Entry {
        id: "kb-002",
        title: "Features",
        keywords: &["feature", "features", "capabilities", "voice", "chat", "citations", "streaming"],
        text: "VoiceAssist offers text chat with citations, real-time voice conversations over WebSocket, streaming answers, conversation history and an admin dashboard.",
    },
    Entry {
        id: "kb-003",
        title: "Pricing and plans",
        keywords: &["pricing", "price", "prices", "cost", "costs", "plan", "plans", "billing", "subscription", "free", "trial"],
        text: "VoiceAssist has three plans: Starter (free, 100 queries a month), Team ($29 per user per month) and Enterprise (custom pricing, SSO and an SLA). Every paid plan starts with a 14-day free trial.",
    },
    Entry {
        id: "kb-004",
        title: "Security and compliance",
        keywords: &["security", "secure", "encryption", "encrypted", "compliance", "soc2", "gdpr", "hipaa", "privacy"],
        text: "Data is encrypted in transit (TLS 1.2+) and at rest (AES-256). VoiceAssist is SOC 2 Type II audited, GDPR compliant, and offers HIPAA business associate agreements on Enterprise.",
    },
    Entry {
        id: "kb-005",
        title: "Integrations",
        keywords: &["integration", "integrations", "integrate", "slack", "teams", "zendesk", "salesforce", "webhook", "webhooks"],
        text: "VoiceAssist integrates with Slack, Microsoft Teams, Zendesk and Salesforce, and can call your own webhooks when a conversation ends.",
    },
    Entry {
        id: "kb-006",
        title: "Troubleshooting",
        keywords: &["troubleshoot", "troubleshooting", "error", "errors", "problem", "issue", "broken", "fix", "working"],
        text: "If VoiceAssist does not answer, check the service status at /health, make sure your token has not expired (refresh it with /api/auth/refresh), and retry after the Retry-After delay on a 429.",
    },
    Entry {
        id: "kb-007",
        title: "Microphone and audio setup",
        keywords: &["microphone", "mic", "audio", "sound", "speaker", "headset", "record", "recording"],
        text: "Voice mode needs microphone access in the browser. Audio is sent as 16 kHz mono PCM frames between audio_start and audio_end messages.",
    },
    Entry {
        id: "kb-008",
        title: "Supported languages",
        keywords: &["language", "languages", "english", "spanish", "french", "german", "multilingual", "translate", "translation"],
        text: "VoiceAssist understands and answers in English, Spanish, French, German, Italian and Portuguese; the answer follows the language of the question.",
    },
    Entry {
        id: "kb-009",
        title: "The API and authentication",
        keywords: &["api", "token", "tokens", "jwt", "authentication", "auth", "login", "bearer", "refresh", "password"],
        text: "The VoiceAssist API uses bearer JWTs: log in at /api/auth/login for an access token (15 minutes) and a refresh token (7 days), and send Authorization: Bearer <token>.",
    },
    Entry {
        id: "kb-010",
        title: "Rate limits",
        keywords: &["rate", "limit", "limits", "throttle", "throttling", "429", "quota", "quotas"],
        text: "Logins are limited per account per minute and registrations per minute; over a limit the API answers 429 with a Retry-After header.",
    },
    Entry {
        id: "kb-011",
        title: "Knowledge-base documents",
        keywords: &["document", "documents", "upload", "uploads", "pdf", "markdown", "txt", "knowledge", "kb", "file", "files"],
        text: "Admins upload documents (txt, md, pdf) to the knowledge base; each is indexed in the background and moves from processing to ready.",
    },
    Entry {
        id: "kb-012",
        title: "Data retention and deletion",
        keywords: &["retention", "delete", "deletion", "history", "conversation", "conversations", "export", "data", "backup"],
        text: "Conversation history is kept for 90 days by default; admins can change the retention period, export conversations, or delete a user's data on request.",
    },
    Entry {
        id: "kb-013",
        title: "Accounts and roles",
        keywords: &["account", "accounts", "user", "users", "admin", "administrator", "role", "roles", "permission", "permissions", "sso"],
        text: "Every account is a user or an admin. Admins manage the knowledge base, see the dashboard and metrics, and list users; SSO (SAML, OIDC) is available on Enterprise.",
    },
];

/// Most citations per answer.
pub const MAX_CITATIONS: usize = 3;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 120;

/// An uploaded document the chat can cite once it is ready: its id, its title and the start of
/// its text (what an answer quotes).
pub struct Uploaded {
    pub id: String,
    pub title: String,
    pub text: String,
}

/// How much of an uploaded document's text an answer quotes, in characters.
pub const UPLOADED_TEXT_CHARS: usize = 300;
/// Most distinct words an uploaded document is found by (bounds the index per document).
pub const MAX_INDEXED_WORDS: usize = 500;

/// Words too common to say what a document is about.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "your", "all", "any", "can", "had", "her",
    "was", "one", "our", "out", "has", "have", "his", "how", "its", "may", "new", "now", "see",
    "who", "what", "when", "where", "which", "why", "with", "this", "that", "these", "those",
    "from", "they", "them", "then", "than", "there", "their", "will", "would", "could", "should",
    "does", "did", "into", "about", "also", "been", "being", "were", "some", "such", "only",
    "other", "more", "most", "very", "just", "over", "each",
];

/// The words an uploaded document is found by: the distinct words of its title and text, of
/// three characters or more, without common ones, at most `MAX_INDEXED_WORDS`.
pub fn index_words(title: &str, text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for w in words(title).into_iter().chain(
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase),
    ) {
        if out.len() >= MAX_INDEXED_WORDS {
            break;
        }
        if w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()) && seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

/// Where a cited answer comes from.
pub enum Source {
    Builtin(&'static Entry),
    Uploaded(std::sync::Arc<Uploaded>),
}

/// One cited entry and how many query words matched it.
pub struct Hit {
    pub source: Source,
    pub score: usize,
}

impl Hit {
    pub fn id(&self) -> &str {
        match &self.source {
            Source::Builtin(e) => e.id,
            Source::Uploaded(u) => &u.id,
        }
    }

    pub fn title(&self) -> &str {
        match &self.source {
            Source::Builtin(e) => e.title,
            Source::Uploaded(u) => &u.title,
        }
    }

    pub fn text(&self) -> &str {
        match &self.source {
            Source::Builtin(e) => e.text,
            Source::Uploaded(u) if u.text.trim().is_empty() => &u.title,
            Source::Uploaded(u) => &u.text,
        }
    }

    pub fn snippet(&self) -> String {
        let text = self.text();
        if text.chars().count() <= SNIPPET_CHARS {
            return text.to_owned();
        }
        let cut: String = text.chars().take(SNIPPET_CHARS).collect();
        format!("{}…", cut.trim_end())
    }
}

/// The query's distinct lower-case words (letters and digits), in order of appearance.
pub fn words(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
    {
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The entries sharing at least one keyword with the query, built-in articles and then ready
/// uploaded documents (`uploaded` gives those with their scores, in upload order): best score
/// first, ties in that order, at most `MAX_CITATIONS`.
pub fn search(query: &str, uploaded: impl FnOnce(&[String]) -> Vec<Hit>) -> Vec<Hit> {
    let words = words(query);
    let mut hits: Vec<Hit> = ENTRIES
        .iter()
        .filter_map(|entry| {
            let score = words
                .iter()
                .filter(|w| entry.keywords.contains(&w.as_str()))
                .count();
            (score > 0).then_some(Hit {
                source: Source::Builtin(entry),
                score,
            })
        })
        .collect();
    if !words.is_empty() {
        hits.extend(uploaded(&words));
    }
    // stable sort: equal scores keep KB order, then upload order
    hits.sort_by_key(|h| std::cmp::Reverse(h.score));
    hits.truncate(MAX_CITATIONS);
    hits
}

/// `search` over the built-in articles only.
#[cfg(test)]
pub fn search_builtin(query: &str) -> Vec<Hit> {
    search(query, |_| Vec::new())
}

pub const NO_MATCH_ANSWER: &str = "I could not find anything about that in the VoiceAssist knowledge base. Try asking about features, pricing, security, integrations, languages, audio setup or troubleshooting.";

/// The answer to a query with these hits: the best entry's text, then a pointer to the others.
pub fn answer(hits: &[Hit]) -> String {
    let Some(best) = hits.first() else {
        return NO_MATCH_ANSWER.to_owned();
    };
    let mut out = format!("{} [{}]", best.text(), best.id());
    if hits.len() > 1 {
        let others: Vec<String> = hits[1..]
            .iter()
            .map(|h| format!("\"{}\" [{}]", h.title(), h.id()))
            .collect();
        out.push_str(" See also: ");
        out.push_str(&others.join(", "));
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_query_gets_citations_best_first() {
        let hits = search_builtin("How much does the Team plan cost? Any free trial?");
        assert!(!hits.is_empty());
        assert_eq!(hits[0].id(), "kb-003");
        assert!(hits.len() <= MAX_CITATIONS);
        assert!(answer(&hits).contains("[kb-003]"));
    }

    #[test]
    fn a_query_matching_nothing_gets_no_citations() {
        let hits = search_builtin("zebra quantum lasagna");
        assert!(hits.is_empty());
        assert_eq!(answer(&hits), NO_MATCH_ANSWER);
        assert!(search_builtin("").is_empty());
        assert!(search_builtin("!!! ???").is_empty());
    }

    #[test]
    fn matching_is_case_and_punctuation_insensitive_and_deterministic() {
        let a = search_builtin("SECURITY, encryption?");
        let b = search_builtin("security encryption");
        assert_eq!(a[0].id(), "kb-004");
        assert_eq!(a[0].score, 2);
        assert_eq!(answer(&a), answer(&b));
        let ids = |h: &[Hit]| h.iter().map(|x| x.id().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            ids(&search_builtin("slack pricing")),
            ids(&search_builtin("slack pricing"))
        );
    }

    #[test]
    fn repeated_words_count_once_and_ties_keep_kb_order() {
        let hits = search_builtin("pricing pricing pricing slack");
        assert_eq!(hits[0].score, 1);
        assert_eq!(hits[0].id(), "kb-003");
        assert_eq!(hits[1].id(), "kb-005");
    }

    #[test]
    fn entries_are_well_formed() {
        let mut ids: Vec<&str> = ENTRIES.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ENTRIES.len());
        for e in ENTRIES {
            assert!(!e.keywords.is_empty());
            for k in e.keywords {
                assert_eq!(*k, k.to_lowercase());
            }
        }
    }

    #[test]
    fn snippets_are_bounded() {
        for e in ENTRIES {
            let s = Hit {
                source: Source::Builtin(e),
                score: 1,
            }
            .snippet();
            assert!(s.chars().count() <= SNIPPET_CHARS + 1);
        }
    }

    #[test]
    fn uploaded_documents_are_found_by_their_words_after_the_builtins() {
        let doc = std::sync::Arc::new(Uploaded {
            id: "doc_1".into(),
            title: "Zorblax handbook".into(),
            text: "The zorblax pricing of the Team plan.".into(),
        });
        let words = index_words(&doc.title, &doc.text);
        assert!(words.contains(&"zorblax".to_string()));
        assert!(!words.contains(&"the".to_string()));
        let uploaded = |q: &[String]| {
            let score = q.iter().filter(|w| words.contains(w)).count();
            (score > 0)
                .then(|| Hit {
                    source: Source::Uploaded(doc.clone()),
                    score,
                })
                .into_iter()
                .collect()
        };
        let hits = search("zorblax", uploaded);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id(), "doc_1");
        assert!(answer(&hits).starts_with("The zorblax pricing"));
        // a tie with a built-in article: the article first
        let hits = search("pricing", uploaded);
        assert_eq!(hits[0].id(), "kb-003");
        assert_eq!(hits[1].id(), "doc_1");
    }

    #[test]
    fn indexing_is_bounded() {
        let text: String = (0..5_000).map(|i| format!("word{i} ")).collect();
        assert_eq!(index_words("t", &text).len(), MAX_INDEXED_WORDS);
    }
}
