//! The live view's gate: which requests are served (the `Host` they name, the credentials they
//! carry), and the headers every response carries so that other sites can neither embed,
//! frame nor sniff what the view serves.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Access;

pub(super) struct Gate {
    /// The token after `Basic ` a request must carry, when credentials are required.
    token: Option<Vec<u8>>,
    /// Names (lower case, no trailing dot) accepted in `Host` besides IP literals and localhost.
    hosts: Vec<String>,
    csp: HeaderValue,
}

impl Gate {
    /// `script`: the page's one inline script, allowed by its hash and nothing else.
    pub(super) fn new(access: &Access, script: &str) -> Self {
        let token = access.credentials.as_ref().map(|c| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.user, c.password))
                .into_bytes()
        });
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
        let csp = format!(
            "default-src 'none'; img-src 'self'; connect-src 'self'; script-src 'sha256-{hash}'; \
             style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Self {
            token,
            hosts: access.hosts.iter().map(|h| normalise(h)).collect(),
            // Base64 and ASCII only: always a valid header value.
            csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        }
    }

    /// None when the request may be served, else the response that refuses it.
    pub(super) fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !self.host_allowed(host) {
                let body = format!(
                    "this live view does not answer to the name {host:?}; start gss with --serve-host NAME to allow it\n"
                );
                return Some((StatusCode::MISDIRECTED_REQUEST, body).into_response());
            }
        }
        // HTTP/1.0 clients may send no Host; every browser does, and a browser is what DNS
        // rebinding needs.
        if let Some(token) = &self.token {
            let given = headers
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes())
                .unwrap_or(b"");
            let ok = match given.split_at_checked(6) {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"basic ") => {
                    bool::from(rest.trim_ascii().ct_eq(token))
                }
                _ => false,
            };
            if !ok {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    "credentials required: user name and password\n",
                )
                    .into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"gss live view\", charset=\"UTF-8\""),
                );
                return Some(response);
            }
        }
        None
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            // [v6] or [v6]:port
            Some(rest) => match rest.split_once(']') {
                Some((v6, port))
                    if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) =>
                {
                    v6
                }
                _ => return false,
            },
            None => match host.rsplit_once(':') {
                Some((name, port)) if is_port(port) => name,
                Some(_) => return false,
                None => host,
            },
        };
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let name = normalise(name);
        name == "localhost" || self.hosts.contains(&name)
    }

    /// Adds the headers every response carries.
    pub(super) fn secure(&self, headers: &mut HeaderMap) {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::serve::Credentials;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn status(gate: &Gate, pairs: &[(&'static str, &str)]) -> u16 {
        gate.refusal(&headers(pairs))
            .map_or(200, |r| r.status().as_u16())
    }

    #[test]
    fn hosts_are_ip_literals_localhost_or_named() {
        let access = Access {
            hosts: vec!["Robot.local.".into()],
            ..Access::default()
        };
        let gate = Gate::new(&access, "");
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "192.168.1.7",
            "[::1]:80",
            "[fe80::1]",
            "robot.local:8080",
            "robot.local.",
        ] {
            assert_eq!(status(&gate, &[("host", ok)]), 200, "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1:x",
            "[::1",
            "robot.local:99999999",
        ] {
            assert_eq!(status(&gate, &[("host", refused)]), 421, "{refused}");
        }
        assert_eq!(status(&gate, &[]), 200, "no Host (HTTP/1.0)");
    }

    #[test]
    fn credentials_are_required_when_set() {
        let access = Access {
            credentials: Some(Credentials::parse("robot:s3cret").unwrap()),
            ..Access::default()
        };
        let gate = Gate::new(&access, "");
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("robot:s3cret")
        );
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("robot:s3cres")
        );
        assert_eq!(
            status(&gate, &[("host", "localhost"), ("authorization", &good)]),
            200
        );
        assert_eq!(
            status(
                &gate,
                &[
                    ("host", "localhost"),
                    ("authorization", &good.replace("Basic", "basic"))
                ]
            ),
            200
        );
        assert_eq!(status(&gate, &[("host", "localhost")]), 401);
        assert_eq!(
            status(&gate, &[("host", "localhost"), ("authorization", &wrong)]),
            401
        );
        assert_eq!(
            status(
                &gate,
                &[("host", "localhost"), ("authorization", "Bearer x")]
            ),
            401
        );
        assert_eq!(
            status(&gate, &[("host", "localhost"), ("authorization", "Basi")]),
            401
        );
        let refused = gate.refusal(&headers(&[])).unwrap();
        assert!(refused.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="));
        // The Host check comes first: a rebinding page learns nothing about the credentials.
        assert_eq!(
            status(&gate, &[("host", "evil.example"), ("authorization", &good)]),
            421
        );
    }

    #[test]
    fn every_response_gets_the_security_headers_and_the_script_hash() {
        let gate = Gate::new(&Access::default(), "tick();");
        let mut h = HeaderMap::new();
        gate.secure(&mut h);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cross-origin-resource-policy"], "same-origin");
        let csp = h["content-security-policy"].to_str().unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"tick();"));
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains(&format!("'sha256-{hash}'")),
            "{csp}"
        );
        assert_eq!(h["cache-control"], "no-store");
    }
}
