//! Host grants: `scheme://host[:port]` patterns, `*.example.com` wildcards.

use url::Url;

/// One granted origin pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    scheme: String,
    /// Lower-case host (for a wildcard: the suffix after `*.`).
    host: String,
    wildcard: bool,
    port: u16,
}

impl HostPattern {
    /// Parses `http[s]://host[:port]` or `http[s]://*.domain[:port]`; a missing port is the scheme's default.
    pub(crate) fn parse(pattern: &str) -> Result<Self, String> {
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| format!("{pattern:?} has no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{pattern:?}: only http and https are allowed"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{pattern:?} must be scheme://host[:port], without path or credentials"
            ));
        }
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url =
            Url::parse(&format!("{scheme}://{rest}")).map_err(|e| format!("{pattern:?}: {e}"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{pattern:?} has no host"))?;
        if host.contains('*') || (wildcard && !matches!(url.host(), Some(url::Host::Domain(_)))) {
            return Err(format!(
                "{pattern:?}: a wildcard is only allowed as the first label of a domain"
            ));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{pattern:?} has no port"))?;
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            wildcard,
            port,
        })
    }

    /// Whether `url` (already parsed) falls under this pattern.
    pub(crate) fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && url.scheme() == self.scheme && url.port_or_known_default() == Some(self.port)
    }
}

/// Checks that `pattern` is a valid entry of [`Grant::allowed_hosts`](crate::Grant::allowed_hosts), so
/// callers can refuse a bad grant when a workflow is saved rather than when it runs.
pub fn validate_host_pattern(pattern: &str) -> Result<(), String> {
    HostPattern::parse(pattern).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::HostPattern;
    use url::Url;

    fn allowed(pattern: &str, url: &str) -> bool {
        HostPattern::parse(pattern)
            .expect("valid pattern")
            .matches(&Url::parse(url).expect("valid url"))
    }

    #[test]
    fn patterns_match_scheme_host_and_port() {
        assert!(allowed(
            "https://api.example.com",
            "https://api.example.com/v1?q=1"
        ));
        assert!(allowed(
            "https://api.example.com",
            "https://API.example.com:443/"
        ));
        assert!(!allowed(
            "https://api.example.com",
            "http://api.example.com/"
        ));
        assert!(!allowed(
            "https://api.example.com",
            "https://api.example.com:8443/"
        ));
        assert!(!allowed(
            "https://api.example.com",
            "https://api.example.com.evil.net/"
        ));
        assert!(allowed("http://127.0.0.1:8080", "http://127.0.0.1:8080/x"));
        assert!(!allowed("http://127.0.0.1:8080", "http://127.0.0.1:8081/x"));
        assert!(allowed("https://*.example.com", "https://a.b.example.com/"));
        assert!(!allowed("https://*.example.com", "https://example.com/"));
        assert!(!allowed("https://*.example.com", "https://badexample.com/"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://a.*.com",
            "https://*.1.2.3.4",
            "https://user@example.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
