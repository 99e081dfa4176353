//! The live view in a browser: `ServeOptions` (what the page shows, who may see it, and the
//! server's limits) is the same in every build; the server is `http.rs` (with its access gate in
//! `gate.rs` and its connection handling in `conn.rs`) with the `serve` feature, and
//! `disabled.rs` without it, where starting it is an error that says how to get a build that can.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{ClassInfo, ModelPackage};

#[cfg(feature = "serve")]
mod conn;
#[cfg(feature = "serve")]
mod gate;
#[cfg(feature = "serve")]
mod http;
#[cfg(feature = "serve-tls")]
mod tls;
#[cfg(feature = "serve")]
pub use http::*;

#[cfg(not(feature = "serve"))]
mod disabled;
#[cfg(not(feature = "serve"))]
pub use disabled::*;

/// What the stream's picture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The camera image with the class colours blended over it.
    #[default]
    Overlay,
    /// The class colours alone: no camera pixel leaves the machine.
    Mask,
}

impl std::str::FromStr for View {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "overlay" => Ok(View::Overlay),
            "mask" => Ok(View::Mask),
            other => Err(format!("{other:?}: expected overlay or mask")),
        }
    }
}

/// A user name and password for HTTP Basic authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// `USER:PASSWORD` (the password may contain `:`); neither part may be empty.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |msg: &str| Error::InvalidOption {
            option: "--serve-auth",
            msg: msg.into(),
        };
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected USER:PASSWORD"))?;
        if user.is_empty() || password.is_empty() {
            return Err(invalid("expected USER:PASSWORD with neither part empty"));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid(
                "control characters (a line break?) in USER:PASSWORD",
            ));
        }
        Ok(Self {
            user: user.into(),
            password: password.into(),
        })
    }
}

impl std::fmt::Debug for Credentials {
    // Never the password, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Who may use the live view.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// HTTP Basic credentials every request must carry; None: no authentication.
    pub credentials: Option<Credentials>,
    /// Serve an address other than loopback without credentials. Without this, starting such a
    /// server is an error: anyone on the network could watch the camera.
    pub open: bool,
    /// Host names (besides IP addresses and `localhost`) requests may name in their `Host`
    /// header, e.g. the machine's DNS name. Any other name is refused: a web page that rebinds
    /// its own name to this machine's address cannot read the stream.
    pub hosts: Vec<String>,
}

/// Bounds on what clients can hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; the next is answered 503 and closed.
    pub max_clients: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// How long a write may wait on a client that does not read before its connection is
    /// closed (a viewer that stopped reading holds at most its socket buffers until then).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 16,
            header_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// A certificate chain and its private key, PEM files, for HTTPS (feature `serve-tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What the live view shows besides the frames, who may see it, and its limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The page's heading (the model and the source).
    pub title: String,
    /// The legend, and the colours the overlays use (ids 0..K-1 in order, as in model.json).
    pub classes: Vec<ClassInfo>,
    /// JPEG quality, 1-100.
    pub jpeg_quality: u8,
    /// How long a shutdown waits for open connections to finish before dropping them.
    pub shutdown_grace: Duration,
    pub view: View,
    pub access: Access,
    pub limits: Limits,
    /// Serve HTTPS with these files (feature `serve-tls`); None: plain HTTP.
    pub tls: Option<TlsFiles>,
}

impl ServeOptions {
    /// The package's classes and name, JPEG quality 80, one second of grace, overlays, no
    /// credentials (so loopback only), the default limits.
    pub fn for_package(package: &ModelPackage) -> Self {
        Self {
            title: format!("gss: {}", package.manifest.name),
            classes: package.manifest.classes.clone(),
            jpeg_quality: 80,
            shutdown_grace: Duration::from_secs(1),
            view: View::Overlay,
            access: Access::default(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// The address to listen on: `PORT` alone means loopback (`127.0.0.1:PORT`); otherwise a full
/// `ADDR:PORT` (`[::1]:PORT` for IPv6).
pub fn listen_address(text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse().map_err(|_| Error::InvalidOption {
        option: "--serve",
        msg: format!("{text:?}: expected PORT (on loopback) or ADDR:PORT, e.g. 8080, 127.0.0.1:8080 or 0.0.0.0:8080"),
    })
}

/// Refuses to serve an address other than loopback without credentials, unless the caller
/// asked for an open server.
pub fn check_exposure(addr: SocketAddr, access: &Access) -> Result<()> {
    if addr.ip().is_loopback() || access.credentials.is_some() || access.open {
        return Ok(());
    }
    Err(Error::InvalidOption {
        option: "--serve",
        msg: format!(
            "{addr} is reachable from other machines and the live view shows the camera: give \
             --serve-auth USER:PASSWORD (or GSS_SERVE_AUTH), or --serve-insecure to serve it to anyone who can reach it"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_listens_on_loopback_and_an_address_is_taken_whole() {
        assert_eq!(
            listen_address("8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            listen_address("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            listen_address("[::1]:9").unwrap(),
            "[::1]:9".parse().unwrap()
        );
        let err = listen_address("localhost").unwrap_err().to_string();
        assert!(
            err.contains("--serve") && err.contains("ADDR:PORT"),
            "{err}"
        );
    }

    #[test]
    fn only_loopback_is_served_without_credentials_unless_asked() {
        let open = Access::default();
        assert!(check_exposure("127.0.0.1:1".parse().unwrap(), &open).is_ok());
        assert!(check_exposure("[::1]:1".parse().unwrap(), &open).is_ok());
        let err = check_exposure("0.0.0.0:1".parse().unwrap(), &open)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--serve-auth") && err.contains("--serve-insecure"),
            "{err}"
        );
        let with = Access {
            credentials: Some(Credentials::parse("a:b").unwrap()),
            ..Access::default()
        };
        assert!(check_exposure("0.0.0.0:1".parse().unwrap(), &with).is_ok());
        let insecure = Access {
            open: true,
            ..Access::default()
        };
        assert!(check_exposure("192.168.1.2:1".parse().unwrap(), &insecure).is_ok());
    }

    #[test]
    fn credentials_parse_and_never_print_the_password() {
        let c = Credentials::parse("robot:se:cret").unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("robot", "se:cret"));
        assert!(!format!("{c:?}").contains("se:cret"));
        for bad in ["nopassword", ":x", "x:", "a:b\n"] {
            assert!(Credentials::parse(bad).is_err(), "{bad:?}");
        }
    }
}
