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

/// One cited entry and how many query words matched it.
pub struct Hit {
    pub entry: &'static Entry,
    pub score: usize,
}

impl Hit {
    pub fn snippet(&self) -> String {
        let text = self.entry.text;
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

/// The entries sharing at least one keyword with the query: best score first, ties in KB order,
/// at most `MAX_CITATIONS`.
pub fn search(query: &str) -> Vec<Hit> {
    let words = words(query);
    let mut hits: Vec<Hit> = ENTRIES
        .iter()
        .filter_map(|entry| {
            let score = words
                .iter()
                .filter(|w| entry.keywords.contains(&w.as_str()))
                .count();
            (score > 0).then_some(Hit { entry, score })
        })
        .collect();
    // stable sort: equal scores keep KB order
    hits.sort_by_key(|h| std::cmp::Reverse(h.score));
    hits.truncate(MAX_CITATIONS);
    hits
}

pub const NO_MATCH_ANSWER: &str = "I could not find anything about that in the VoiceAssist knowledge base. Try asking about features, pricing, security, integrations, languages, audio setup or troubleshooting.";

/// The answer to a query with these hits: the best entry's text, then a pointer to the others.
pub fn answer(hits: &[Hit]) -> String {
    let Some(best) = hits.first() else {
        return NO_MATCH_ANSWER.to_owned();
    };
    let mut out = format!("{} [{}]", best.entry.text, best.entry.id);
    if hits.len() > 1 {
        let others: Vec<String> = hits[1..]
            .iter()
            .map(|h| format!("\"{}\" [{}]", h.entry.title, h.entry.id))
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
        let hits = search("How much does the Team plan cost? Any free trial?");
        assert!(!hits.is_empty());
        assert_eq!(hits[0].entry.id, "kb-003");
        assert!(hits.len() <= MAX_CITATIONS);
        assert!(answer(&hits).contains("[kb-003]"));
    }

    #[test]
    fn a_query_matching_nothing_gets_no_citations() {
        let hits = search("zebra quantum lasagna");
        assert!(hits.is_empty());
        assert_eq!(answer(&hits), NO_MATCH_ANSWER);
        assert!(search("").is_empty());
        assert!(search("!!! ???").is_empty());
    }

    #[test]
    fn matching_is_case_and_punctuation_insensitive_and_deterministic() {
        let a = search("SECURITY, encryption?");
        let b = search("security encryption");
        assert_eq!(a[0].entry.id, "kb-004");
        assert_eq!(a[0].score, 2);
        assert_eq!(answer(&a), answer(&b));
        let ids = |h: &[Hit]| h.iter().map(|x| x.entry.id).collect::<Vec<_>>();
        assert_eq!(ids(&search("slack pricing")), ids(&search("slack pricing")));
    }

    #[test]
    fn repeated_words_count_once_and_ties_keep_kb_order() {
        let hits = search("pricing pricing pricing slack");
        assert_eq!(hits[0].score, 1);
        assert_eq!(hits[0].entry.id, "kb-003");
        assert_eq!(hits[1].entry.id, "kb-005");
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
            let s = Hit { entry: e, score: 1 }.snippet();
            assert!(s.chars().count() <= SNIPPET_CHARS + 1);
        }
    }
}
