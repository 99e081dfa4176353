//! Finding what gss ships beside its binary (the sample clip, the default model) from wherever
//! it runs: a setting the user made first, then the current directory, then beside the
//! executable (an install puts `assets/` next to the binary or under `../share/gss/`), and the
//! checkout it was built from last, which only exists on the build machine. Nothing found is
//! one [`Error::NotFound`] that lists every place tried and says what to do.

use crate::{Error, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// One place to look, and why it is on the list (shown when nothing is found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub path: PathBuf,
    pub reason: String,
    /// A setting the user made: when it points nowhere the search stops there, because quietly
    /// using some other copy would hide the mistake.
    pub explicit: bool,
}

impl Candidate {
    pub fn new(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Candidate {
            path: path.into(),
            reason: reason.into(),
            explicit: false,
        }
    }

    /// The path the environment variable `var` holds, when it is set and not empty.
    pub fn from_env(var: &str) -> Option<Self> {
        Self::from_setting(var, std::env::var_os(var))
    }

    fn from_setting(var: &str, value: Option<OsString>) -> Option<Self> {
        let value = value.filter(|v| !v.is_empty())?;
        Some(Candidate {
            path: PathBuf::from(value),
            reason: format!("${var}"),
            explicit: true,
        })
    }
}

/// The standard places for something shipped at `relative` inside the source tree (e.g.
/// `assets/street8-clip/images/seq`), in search order: the variable `env_var` when set,
/// `./relative`, `<exe dir>/relative`, `<exe dir>/../share/gss/relative`, and the checkout
/// this gss was built from.
pub fn bundled(env_var: Option<&str>, relative: &Path) -> Vec<Candidate> {
    let setting = env_var.and_then(Candidate::from_env);
    let exe = std::env::current_exe().ok();
    standard_places(
        setting,
        relative,
        exe.as_deref(),
        user_data_dir().as_deref(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
fn user_data_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })
}

fn standard_places(
    setting: Option<Candidate>,
    relative: &Path,
    exe: Option<&Path>,
    user_data: Option<&Path>,
    checkout: &Path,
) -> Vec<Candidate> {
    let mut places: Vec<Candidate> = setting.into_iter().collect();
    places.push(Candidate::new(
        Path::new(".").join(relative),
        "current directory",
    ));
    if let Some(dir) = exe.and_then(Path::parent) {
        places.push(Candidate::new(dir.join(relative), "beside the executable"));
        places.push(Candidate::new(
            dir.join("../share/gss").join(relative),
            "installed data directory",
        ));
    }
    if let Some(data) = user_data {
        places.push(Candidate::new(
            data.join("gss").join(relative),
            "user data directory",
        ));
    }
    places.push(Candidate::new(
        checkout.join(relative),
        "the checkout gss was built from",
    ));
    // Run from the checkout or the install directory, two entries are one place.
    let mut seen = Vec::new();
    places.retain(|c| {
        let key = c.path.canonicalize().unwrap_or_else(|_| c.path.clone());
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    places
}

/// The first candidate that exists. None does: [`Error::NotFound`] naming `what`, each path
/// tried with its reason, and `hint` (what to do). An explicit candidate that does not exist
/// ends the search with an error saying so.
pub fn first_existing(what: &str, candidates: &[Candidate], hint: &str) -> Result<PathBuf> {
    let mut looked = Vec::new();
    for candidate in candidates {
        looked.push(format!(
            "{} ({})",
            candidate.path.display(),
            candidate.reason
        ));
        if candidate.path.exists() {
            return Ok(candidate.path.clone());
        }
        if candidate.explicit {
            return Err(Error::NotFound {
                what: what.to_string(),
                looked: looked.join(", "),
                hint: format!(
                    "{} names a path that does not exist; correct it, or unset it to use the bundled copy",
                    candidate.reason
                ),
            });
        }
    }
    Err(Error::NotFound {
        what: what.to_string(),
        looked: looked.join(", "),
        hint: hint.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gss-locate-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_first_existing_candidate_wins() {
        let dir = scratch("first");
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::create_dir_all(dir.join("c")).unwrap();
        let candidates = [
            Candidate::new(dir.join("a"), "one"),
            Candidate::new(dir.join("b"), "two"),
            Candidate::new(dir.join("c"), "three"),
        ];
        assert_eq!(
            first_existing("thing", &candidates, "do this").unwrap(),
            dir.join("b")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_miss_lists_every_place_and_what_to_do() {
        let dir = scratch("miss");
        let candidates = [
            Candidate::new(dir.join("a"), "one"),
            Candidate::new(dir.join("b"), "two"),
        ];
        let err =
            first_existing("the sample clip", &candidates, "set GSS_SAMPLE_CLIP").unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }));
        let text = err.to_string();
        let (a, b) = (
            dir.join("a").display().to_string(),
            dir.join("b").display().to_string(),
        );
        assert_eq!(
            text,
            format!(
                "the sample clip: not found; looked at {a} (one), {b} (two); set GSS_SAMPLE_CLIP"
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_setting_that_points_nowhere_is_reported_not_routed_around() {
        let dir = scratch("explicit");
        let setting = Candidate::from_setting("GSS_X", Some(dir.join("typo").into())).unwrap();
        assert!(setting.explicit && setting.reason == "$GSS_X");
        let candidates = [setting, Candidate::new(&dir, "fallback that exists")];
        let text = first_existing("x", &candidates, "unused")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("typo ($GSS_X)")
                && text.contains("$GSS_X names a path that does not exist"),
            "{text}"
        );
        assert!(!text.contains("fallback"), "{text}");
        // Unset or empty: no candidate at all.
        assert_eq!(Candidate::from_setting("GSS_X", None), None);
        assert_eq!(
            Candidate::from_setting("GSS_X", Some(OsString::new())),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn standard_places_come_in_order_setting_cwd_exe_share_user_checkout() {
        let rel = Path::new("assets/clip");
        let setting = Candidate::from_setting("GSS_CLIP", Some("/data/clip".into()));
        let places = standard_places(
            setting,
            rel,
            Some(Path::new("/opt/gss/bin/gss")),
            Some(Path::new("/home/u/.local/share")),
            Path::new("/src/gss"),
        );
        let paths: Vec<_> = places.iter().map(|c| c.path.clone()).collect();
        let expected: Vec<PathBuf> = [
            "/data/clip",
            "./assets/clip",
            "/opt/gss/bin/assets/clip",
            "/opt/gss/bin/../share/gss/assets/clip",
            "/home/u/.local/share/gss/assets/clip",
            "/src/gss/assets/clip",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(paths, expected);
        assert!(places[1..].iter().all(|c| !c.explicit));
        // No executable path known: the places that depend on it are left out.
        assert_eq!(
            standard_places(None, rel, None, None, Path::new("/src/gss")).len(),
            2
        );
    }

    #[test]
    fn one_place_reached_two_ways_is_listed_once() {
        let here = std::env::current_dir().unwrap();
        let places = standard_places(None, Path::new("src"), Some(&here.join("gss")), None, &here);
        assert_eq!(places.len(), 2, "{places:?}");
    }
}
