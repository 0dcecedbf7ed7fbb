//! The server's memory: users and revoked tokens, each capped so that a soak test cannot grow
//! it without limit. Nothing is durable.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::accesslog::AccessLog;
use super::auth::{now_secs, PasswordHash, Tokens};
use super::config::Config;
use super::documents::Documents;
use super::metrics::Metrics;
use super::ratelimit::FixedWindow;

#[derive(Debug)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub full_name: String,
    pub is_admin: bool,
    pub created_at: u64,
    pub password: PasswordHash,
}

impl User {
    /// The public view of a user (no password hash).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "email": self.email,
            "full_name": self.full_name,
            "is_admin": self.is_admin,
            "created_at": self.created_at,
        })
    }
}

/// Users by id and by (lower-cased) email. When full, registering evicts the oldest non-admin
/// user (its tokens then stop working: `/api/users/me` answers 401).
pub struct Users {
    inner: Mutex<UsersInner>,
    cap: usize,
}

#[derive(Default)]
struct UsersInner {
    /// Ordered by id, which is registration order (the admin user list pages through it).
    by_id: BTreeMap<u64, Arc<User>>,
    by_email: HashMap<String, u64>,
    /// Non-admin users, oldest first: the eviction order.
    order: VecDeque<u64>,
    next_id: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct EmailTaken;

impl Users {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Mutex::new(UsersInner {
                next_id: 1,
                ..UsersInner::default()
            }),
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    /// Users `offset..offset + limit` in id order, and the total.
    pub fn page(&self, offset: usize, limit: usize) -> (Vec<Arc<User>>, usize) {
        let inner = self.inner.lock();
        let users = inner
            .by_id
            .values()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        (users, inner.by_id.len())
    }

    pub fn contains_email(&self, email: &str) -> bool {
        self.inner.lock().by_email.contains_key(email)
    }

    pub fn by_email(&self, email: &str) -> Option<Arc<User>> {
        let inner = self.inner.lock();
        inner
            .by_email
            .get(email)
            .and_then(|id| inner.by_id.get(id))
            .cloned()
    }

    pub fn by_id(&self, id: u64) -> Option<Arc<User>> {
        self.inner.lock().by_id.get(&id).cloned()
    }

    /// Adds a user; `email` must already be normalized (lower case).
    pub fn insert(
        &self,
        email: String,
        full_name: String,
        is_admin: bool,
        password: PasswordHash,
    ) -> Result<Arc<User>, EmailTaken> {
        let mut inner = self.inner.lock();
        if inner.by_email.contains_key(&email) {
            return Err(EmailTaken);
        }
        while inner.by_id.len() >= self.cap {
            let Some(oldest) = inner.order.pop_front() else {
                break; // only admins left: let the store exceed the cap by them
            };
            if let Some(gone) = inner.by_id.remove(&oldest) {
                inner.by_email.remove(&gone.email);
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let user = Arc::new(User {
            id,
            email: email.clone(),
            full_name,
            is_admin,
            created_at: now_secs(),
            password,
        });
        inner.by_id.insert(id, user.clone());
        inner.by_email.insert(email, id);
        if !is_admin {
            inner.order.push_back(id);
        }
        Ok(user)
    }
}

/// Ids (`jti`) of revoked tokens until they expire. Beyond the cap the soonest-expiring entries
/// are forgotten first (expired ones are pruned on every insert).
pub struct Revocations {
    inner: Mutex<RevokedInner>,
    cap: usize,
}

#[derive(Default)]
struct RevokedInner {
    ids: HashSet<String>,
    /// (exp, jti), in insertion order; with fixed TTLs per kind that is close to exp order.
    order: VecDeque<(u64, String)>,
}

impl Revocations {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Mutex::new(RevokedInner::default()),
            cap,
        }
    }

    pub fn revoke(&self, jti: &str, exp: u64) {
        let now = now_secs();
        let mut inner = self.inner.lock();
        if inner.ids.contains(jti) {
            return;
        }
        // drop expired entries from the front, then the oldest while over the cap
        while let Some((front_exp, _)) = inner.order.front() {
            if *front_exp > now && inner.order.len() < self.cap {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                inner.ids.remove(&old);
            }
        }
        inner.ids.insert(jti.to_owned());
        inner.order.push_back((exp, jti.to_owned()));
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.inner.lock().ids.contains(jti)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().ids.len()
    }
}

/// One chat message.
#[derive(Clone, Debug)]
pub struct Message {
    pub id: u64,
    pub role: &'static str,
    pub content: String,
    pub citations: Option<serde_json::Value>,
    pub created_at: u64,
}

impl Message {
    pub fn to_json(&self, conversation_id: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "conversation_id": conversation_id,
            "role": self.role,
            "content": self.content,
            "created_at": self.created_at,
        });
        if let (Some(c), Some(map)) = (&self.citations, v.as_object_mut()) {
            map.insert("citations".into(), c.clone());
        }
        v
    }
}

pub struct Conversation {
    pub id: String,
    pub user_id: u64,
    pub title: String,
    pub created_at: u64,
    pub updated_at: u64,
    pub messages: VecDeque<Message>,
    seq: u64,
}

impl Conversation {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "title": self.title,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "message_count": self.messages.len(),
        })
    }
}

/// Conversations, capped per user and in all (oldest evicted first), each with a capped message
/// list (oldest messages dropped first).
pub struct Conversations {
    inner: Mutex<ConvInner>,
    per_user: usize,
    total: usize,
    per_conversation: usize,
}

#[derive(Default)]
struct ConvInner {
    by_id: HashMap<String, Conversation>,
    /// Creation sequence -> id, oldest first: the global eviction order.
    order: BTreeMap<u64, String>,
    /// Per user, (seq, id) oldest first.
    by_user: HashMap<u64, VecDeque<(u64, String)>>,
    next_seq: u64,
    next_message_id: u64,
    /// Messages currently kept, over all conversations.
    messages: usize,
}

impl ConvInner {
    fn remove(&mut self, id: &str) {
        if let Some(c) = self.by_id.remove(id) {
            self.messages = self.messages.saturating_sub(c.messages.len());
            self.order.remove(&c.seq);
            if let Some(list) = self.by_user.get_mut(&c.user_id) {
                list.retain(|(seq, _)| *seq != c.seq);
                if list.is_empty() {
                    self.by_user.remove(&c.user_id);
                }
            }
        }
    }
}

impl Conversations {
    pub fn new(per_user: usize, total: usize, per_conversation: usize) -> Self {
        Self {
            inner: Mutex::new(ConvInner {
                next_seq: 1,
                next_message_id: 1,
                ..ConvInner::default()
            }),
            per_user: per_user.max(1),
            total: total.max(1),
            per_conversation: per_conversation.max(1),
        }
    }

    /// (conversations, messages) kept.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        (inner.by_id.len(), inner.messages)
    }

    /// Creates a conversation for `user_id`, evicting as the caps require; returns its JSON.
    pub fn create(&self, user_id: u64, title: String) -> Result<serde_json::Value, String> {
        let id = format!("conv_{}", super::auth::random_hex(12)?);
        let now = now_secs();
        let mut inner = self.inner.lock();
        // the user's oldest first, then the oldest of all; each loop removes one per turn
        while inner.by_user.get(&user_id).map_or(0, VecDeque::len) >= self.per_user {
            let Some((_, oldest)) = inner.by_user.get(&user_id).and_then(|l| l.front()).cloned()
            else {
                break;
            };
            inner.remove(&oldest);
        }
        while inner.by_id.len() >= self.total {
            let Some((_, oldest)) = inner.order.first_key_value().map(|(k, v)| (*k, v.clone()))
            else {
                break;
            };
            inner.remove(&oldest);
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let c = Conversation {
            id: id.clone(),
            user_id,
            title,
            created_at: now,
            updated_at: now,
            messages: VecDeque::new(),
            seq,
        };
        let json = c.to_json();
        inner.by_id.insert(id.clone(), c);
        inner.order.insert(seq, id.clone());
        inner
            .by_user
            .entry(user_id)
            .or_default()
            .push_back((seq, id));
        Ok(json)
    }

    /// Whether `id` is a conversation of `user_id`.
    pub fn owns(&self, user_id: u64, id: &str) -> bool {
        self.inner
            .lock()
            .by_id
            .get(id)
            .is_some_and(|c| c.user_id == user_id)
    }

    /// Appends messages to a conversation of `user_id`, dropping its oldest past the cap.
    /// Returns the new messages' ids, or `None` if the conversation is gone.
    pub fn append(
        &self,
        user_id: u64,
        id: &str,
        new: Vec<(&'static str, String, Option<serde_json::Value>)>,
    ) -> Option<Vec<u64>> {
        let now = now_secs();
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let c = inner.by_id.get_mut(id).filter(|c| c.user_id == user_id)?;
        let mut ids = Vec::with_capacity(new.len());
        for (role, content, citations) in new {
            let mid = inner.next_message_id;
            inner.next_message_id += 1;
            c.messages.push_back(Message {
                id: mid,
                role,
                content,
                citations,
                created_at: now,
            });
            inner.messages += 1;
            ids.push(mid);
            while c.messages.len() > self.per_conversation {
                c.messages.pop_front();
                inner.messages = inner.messages.saturating_sub(1);
            }
        }
        c.updated_at = now;
        Some(ids)
    }

    /// The user's conversations, newest first: `offset..offset + limit`, and their total.
    pub fn page_of_user(
        &self,
        user_id: u64,
        offset: usize,
        limit: usize,
    ) -> (Vec<serde_json::Value>, usize) {
        let inner = self.inner.lock();
        let Some(list) = inner.by_user.get(&user_id) else {
            return (Vec::new(), 0);
        };
        let items = list
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .filter_map(|(_, id)| inner.by_id.get(id).map(Conversation::to_json))
            .collect();
        (items, list.len())
    }

    /// Messages `offset..offset + limit` of a conversation of `user_id`, oldest first, and
    /// their total; `None` if it is not the user's (or does not exist).
    pub fn messages(
        &self,
        user_id: u64,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Option<(Vec<serde_json::Value>, usize)> {
        let inner = self.inner.lock();
        let c = inner.by_id.get(id).filter(|c| c.user_id == user_id)?;
        let items = c
            .messages
            .iter()
            .skip(offset)
            .take(limit)
            .map(|m| m.to_json(&c.id))
            .collect();
        Some((items, c.messages.len()))
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub config: Config,
    pub started: Instant,
    pub requests_health: AtomicU64,
    pub users: Users,
    pub revoked: Revocations,
    pub tokens: Tokens,
    pub register_limit: FixedWindow,
    pub login_limit: FixedWindow,
    pub conversations: Conversations,
    /// Chat queries answered since start.
    pub queries: AtomicU64,
    /// The realtime WebSocket endpoint's connections, limits and counters.
    pub realtime: Arc<super::realtime::Hub>,
    pub documents: Documents,
    pub metrics: Arc<Metrics>,
    /// `None` when the access log is off.
    pub access_log: Option<AccessLog>,
}

impl AppState {
    /// Builds the stores and seeds the admin account.
    pub fn new(config: Config) -> Result<Arc<Self>, String> {
        config.validate()?;
        let secret = match &config.jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut buf = vec![0u8; 32];
                super::auth::random_bytes(&mut buf)?;
                buf
            }
        };
        let tokens = Tokens::new(&secret, config.access_token_ttl, config.refresh_token_ttl);
        let users = Users::new(config.max_users);
        let admin_hash =
            super::auth::hash_password(&config.admin_password, config.password_hash_iterations)?;
        users
            .insert(
                config.admin_email.trim().to_lowercase(),
                "Administrator".to_owned(),
                true,
                admin_hash,
            )
            .map_err(|_| "admin_email is taken".to_owned())?;
        Ok(Arc::new(Self {
            register_limit: FixedWindow::new(config.register_per_minute, config.max_users),
            login_limit: FixedWindow::new(config.login_attempts_per_minute, config.max_users),
            revoked: Revocations::new(config.max_revoked_tokens),
            started: Instant::now(),
            requests_health: AtomicU64::new(0),
            conversations: Conversations::new(
                config.max_conversations_per_user,
                config.max_conversations,
                config.max_messages_per_conversation,
            ),
            queries: AtomicU64::new(0),
            realtime: Arc::new(super::realtime::Hub::new(&config)),
            documents: Documents::new(
                config.max_documents,
                Duration::from_millis(config.document_processing_ms),
            ),
            metrics: Arc::new(Metrics::new()),
            access_log: config
                .access_log
                .as_deref()
                .map(AccessLog::open)
                .transpose()?,
            users,
            tokens,
            config,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_password;

    fn h() -> PasswordHash {
        hash_password("pw", 1).unwrap()
    }

    #[test]
    fn a_duplicate_email_is_refused() {
        let u = Users::new(10);
        u.insert("a@x.io".into(), "A".into(), false, h()).unwrap();
        assert_eq!(
            u.insert("a@x.io".into(), "A".into(), false, h())
                .unwrap_err(),
            EmailTaken
        );
    }

    #[test]
    fn a_full_store_evicts_the_oldest_non_admin() {
        let u = Users::new(3);
        let admin = u.insert("root@x.io".into(), "R".into(), true, h()).unwrap();
        let a = u.insert("a@x.io".into(), "A".into(), false, h()).unwrap();
        u.insert("b@x.io".into(), "B".into(), false, h()).unwrap();
        u.insert("c@x.io".into(), "C".into(), false, h()).unwrap();
        assert_eq!(u.len(), 3);
        assert!(u.by_id(a.id).is_none());
        assert!(u.by_email("a@x.io").is_none());
        assert!(u.by_id(admin.id).is_some());
        assert!(u.contains_email("c@x.io"));
    }

    #[test]
    fn revocation_is_remembered_and_capped() {
        let r = Revocations::new(2);
        let exp = now_secs() + 100;
        r.revoke("a", exp);
        r.revoke("b", exp);
        assert!(r.is_revoked("a") && r.is_revoked("b"));
        r.revoke("c", exp);
        assert_eq!(r.len(), 2);
        assert!(!r.is_revoked("a"));
        assert!(r.is_revoked("c"));
    }

    #[test]
    fn expired_revocations_are_pruned() {
        let r = Revocations::new(10);
        r.revoke("old", now_secs() - 1);
        r.revoke("new", now_secs() + 100);
        assert!(!r.is_revoked("old"));
        assert!(r.is_revoked("new"));
    }

    fn msg(text: &str) -> Vec<(&'static str, String, Option<serde_json::Value>)> {
        vec![("user", text.to_owned(), None)]
    }

    #[test]
    fn conversations_are_capped_per_user_and_in_all() {
        let c = Conversations::new(2, 3, 10);
        let a1 = c.create(1, "a1".into()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let a2 = c.create(1, "a2".into()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let a3 = c.create(1, "a3".into()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!c.owns(1, &a1));
        assert!(c.owns(1, &a2) && c.owns(1, &a3));
        assert!(!c.owns(2, &a2));
        c.create(2, "b1".into()).unwrap();
        c.create(2, "b2".into()).unwrap(); // total cap 3: evicts a2, the oldest of all
        assert!(!c.owns(1, &a2));
        assert_eq!(c.counts().0, 3);
        let (items, total) = c.page_of_user(1, 0, 10);
        assert_eq!(total, 1);
        assert_eq!(items[0]["title"], "a3");
    }

    #[test]
    fn messages_are_capped_per_conversation() {
        let c = Conversations::new(5, 5, 3);
        let id = c.create(1, "t".into()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for i in 0..5 {
            c.append(1, &id, msg(&format!("m{i}"))).unwrap();
        }
        let (items, total) = c.messages(1, &id, 0, 100).unwrap();
        assert_eq!(total, 3);
        assert_eq!(items[0]["content"], "m2");
        assert_eq!(c.counts().1, 3);
        assert!(c.append(2, &id, msg("x")).is_none());
        assert!(c.messages(2, &id, 0, 10).is_none());
    }

    #[test]
    fn the_admin_is_seeded() {
        let s = AppState::new(Config::default()).unwrap();
        let admin = s.users.by_email("admin@voiceassist.local").unwrap();
        assert!(admin.is_admin);
    }
}
