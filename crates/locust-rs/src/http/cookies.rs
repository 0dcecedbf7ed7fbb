//! One client's cookies: the RFC 6265 store for cookies that came with a host, plus the cookies
//! set by hand without a domain, which http.cookiejar (and so requests) sends to every host.

use std::collections::HashMap;

use cookie_store::{CookieDomain, CookieStore};
use http::HeaderValue;
use url::Url;

/// A cookie set without a domain: sent to every host, on paths under its own.
struct Anywhere {
    name: String,
    value: String,
    path: String,
}

/// The cookie store plus the order cookies were first set in: like http.cookiejar, a request
/// sends longer paths first and, within a path, older cookies first.
#[derive(Default)]
pub struct Jar {
    store: CookieStore,
    anywhere: Vec<Anywhere>,
    order: HashMap<String, u64>,
    next: u64,
}

impl Jar {
    fn remember(&mut self, name: &str) {
        if !self.order.contains_key(name) {
            self.order.insert(name.to_string(), self.next);
            self.next += 1;
        }
    }

    /// Stores a cookie as if `url` had sent it in a Set-Cookie header.
    pub fn parse(&mut self, set_cookie: &str, url: &Url) -> Result<(), String> {
        self.store
            .parse(set_cookie, url)
            .map_err(|e| e.to_string())?;
        if let Some(name) = set_cookie.split(['=', ';']).next() {
            self.remember(name.trim());
        }
        Ok(())
    }

    /// Sets (or replaces, by name and path) a cookie without a domain.
    pub fn set_anywhere(&mut self, name: String, value: String, path: String) {
        self.remember(&name);
        let path = if path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        match self
            .anywhere
            .iter_mut()
            .find(|c| c.name == name && c.path == path)
        {
            Some(c) => c.value = value,
            None => self.anywhere.push(Anywhere { name, value, path }),
        }
    }

    /// The Cookie header for a request to `url`.
    pub fn header(&self, url: &Url) -> Option<HeaderValue> {
        let mut cookies: Vec<(&str, &str, usize)> = self
            .store
            .matches(url)
            .into_iter()
            .map(|c| (c.name(), c.value(), String::from(&c.path).len()))
            .collect();
        let path = url.path();
        cookies.extend(
            self.anywhere
                .iter()
                .filter(|c| path_matches(path, &c.path))
                .map(|c| (c.name.as_str(), c.value.as_str(), c.path.len())),
        );
        if cookies.is_empty() {
            return None;
        }
        cookies.sort_by_key(|(name, _, path_len)| {
            (
                std::cmp::Reverse(*path_len),
                self.order.get(*name).copied().unwrap_or(u64::MAX),
            )
        });
        let mut out = String::new();
        for (name, value, _) in cookies {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        HeaderValue::from_str(&out).ok()
    }

    /// Every cookie as (name, value, domain, path); the domain is empty for one set without it.
    pub fn list(&self) -> Vec<(String, String, String, String)> {
        let stored = self.store.iter_unexpired().map(|c| {
            let domain = match &c.domain {
                CookieDomain::HostOnly(d) | CookieDomain::Suffix(d) => d.clone(),
                _ => String::new(),
            };
            (
                c.name().to_string(),
                c.value().to_string(),
                domain,
                String::from(&c.path),
            )
        });
        let anywhere = self.anywhere.iter().map(|c| {
            (
                c.name.clone(),
                c.value.clone(),
                String::new(),
                c.path.clone(),
            )
        });
        stored.chain(anywhere).collect()
    }

    pub fn clear(&mut self) {
        self.store.clear();
        self.anywhere.clear();
        self.order.clear();
    }
}

/// RFC 6265 §5.1.4 path-match, as http.cookiejar applies it.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_cookie_without_a_domain_goes_to_every_host_under_its_path() {
        let mut jar = Jar::default();
        jar.parse("host=1; Path=/", &url("http://a.test/")).ok();
        jar.set_anywhere("any".into(), "2".into(), "/".into());
        jar.set_anywhere("deep".into(), "3".into(), "/api".into());
        fn header(jar: &Jar, u: &str) -> Option<String> {
            jar.header(&url(u))
                .map(|h| h.to_str().unwrap_or("").to_owned())
        }
        assert_eq!(
            header(&jar, "http://a.test/x"),
            Some("host=1; any=2".into())
        );
        assert_eq!(header(&jar, "http://b.test/x"), Some("any=2".into()));
        assert_eq!(
            header(&jar, "http://b.test/api/v1"),
            Some("deep=3; any=2".into())
        );
        assert_eq!(header(&jar, "http://b.test/apix"), Some("any=2".into()));
        jar.set_anywhere("any".into(), "4".into(), "/".into());
        assert_eq!(header(&jar, "http://b.test/"), Some("any=4".into()));
        assert_eq!(jar.list().len(), 3);
        jar.clear();
        assert_eq!(header(&jar, "http://b.test/"), None);
    }
}
