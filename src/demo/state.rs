//! The server's memory: users and revoked tokens, each capped so that a soak test cannot grow
//! it without limit. Nothing is durable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::auth::{now_secs, PasswordHash, Tokens};
use super::config::Config;
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
    by_id: HashMap<u64, Arc<User>>,
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

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().by_id.len()
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
            users,
            tokens,
            config,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::auth::hash_password;

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

    #[test]
    fn the_admin_is_seeded() {
        let s = AppState::new(Config::default()).unwrap();
        let admin = s.users.by_email("admin@voiceassist.local").unwrap();
        assert!(admin.is_admin);
    }
}
