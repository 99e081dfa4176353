//! Which of tract's kernel families to use on this CPU. tract picks AVX-512 kernels wherever the
//! CPU has them, but which family is faster depends on the CPU, not only on its flags: AVX2 won
//! on a Zen 4 and on an Ice Lake for some graphs and lost for others (docs/tract.md). So
//! the choice is measured on the machine at hand (`gss tune` times each candidate on the model)
//! and kept per CPU model in a small cache file that every later run applies before tract starts.
//! An explicit `TRACT_CPU_ISA` in the environment always wins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One measured decision for one CPU model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IsaChoice {
    /// The `TRACT_CPU_ISA` edit to apply ("" = tract's own choice).
    pub isa: String,
    /// The package it was measured on, the thread count, and frame p50 (ms) per candidate.
    pub model: String,
    pub threads: usize,
    pub frame_ms: BTreeMap<String, f64>,
    /// Whose kernels were faster on this CPU ("gss" or "tract"; absent in caches written before
    /// gss had kernels of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernels: Option<String>,
}

/// Candidate `TRACT_CPU_ISA` edits for this CPU: tract's default, and AVX2 kernels in place of
/// AVX-512 where the CPU has AVX-512.
pub fn candidates() -> Vec<&'static str> {
    let mut c = vec![""];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        c.push("-avx512f");
    }
    c
}

/// The CPU's model name (`/proc/cpuinfo`), the key of the cache.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// `$GSS_CACHE_DIR`, else `$XDG_CACHE_HOME/gss`, else `~/.cache/gss`; the file is `tract-isa.json`.
pub fn cache_file() -> Option<PathBuf> {
    let dir = std::env::var_os("GSS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gss")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gss")))?;
    Some(dir.join("tract-isa.json"))
}

fn read_cache() -> BTreeMap<String, IsaChoice> {
    cache_file()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The cached choice for this CPU, if `gss tune` measured one.
pub fn cached_choice() -> Option<IsaChoice> {
    read_cache().remove(&cpu_model())
}

/// Records `choice` for this CPU (other CPUs' entries are kept: a home directory may be shared).
pub fn save_choice(choice: &IsaChoice) -> std::io::Result<PathBuf> {
    let file = cache_file().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no cache directory: set GSS_CACHE_DIR or HOME",
        )
    })?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut all = read_cache();
    all.insert(cpu_model(), choice.clone());
    let text = serde_json::to_string_pretty(&all).map_err(std::io::Error::other)?;
    std::fs::write(&file, text)?;
    Ok(file)
}

/// What decided tract's kernels in this process.
#[derive(Debug, Clone, PartialEq)]
pub enum IsaSource {
    /// `TRACT_CPU_ISA` was set in the environment.
    Environment(String),
    /// The cached measurement for this CPU was applied.
    Measured(IsaChoice),
    /// Nothing measured yet (or `GSS_ISA_CACHE=off`): tract's own choice.
    Default,
}

/// Applies the cached choice for this CPU, unless the environment sets `TRACT_CPU_ISA` or
/// `GSS_ISA_CACHE=off`. Call once at start-up, before anything loads a model: tract reads the
/// setting once per process.
pub fn apply_cached_choice() -> IsaSource {
    if let Ok(v) = std::env::var("TRACT_CPU_ISA") {
        return IsaSource::Environment(v);
    }
    if std::env::var("GSS_ISA_CACHE").is_ok_and(|v| v == "off") {
        return IsaSource::Default;
    }
    match cached_choice() {
        Some(choice) if candidates().contains(&choice.isa.as_str()) => {
            if !choice.isa.is_empty() {
                tract_onnx::tract_core::knobs::set_str("TRACT_CPU_ISA", &choice.isa);
            }
            IsaSource::Measured(choice)
        }
        _ => IsaSource::Default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_round_trip_through_the_cache_per_cpu() {
        let dir = std::env::temp_dir().join(format!("gss-isa-test-{}", std::process::id()));
        // SAFETY (edition 2021: set_var is safe): this test is the only one touching GSS_CACHE_DIR.
        std::env::set_var("GSS_CACHE_DIR", &dir);
        let choice = IsaChoice {
            isa: "".into(),
            model: "m".into(),
            threads: 2,
            frame_ms: BTreeMap::from([("default".into(), 10.0)]),
            kernels: Some("gss".into()),
        };
        let file = save_choice(&choice).unwrap();
        assert_eq!(file, dir.join("tract-isa.json"));
        assert_eq!(cached_choice(), Some(choice));
        // an unreadable cache is no choice, not an error
        std::fs::write(&file, "not json").unwrap();
        assert_eq!(cached_choice(), None);
        std::env::remove_var("GSS_CACHE_DIR");
        let _ = std::fs::remove_dir_all(dir);
    }
}
