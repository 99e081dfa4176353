//! `gss tune`: measures whose kernels run the model faster on this CPU (gss's own, or tract's in
//! each of its kernel families) and records it (engine::cpu::isa), so every later gss run on this
//! CPU uses it.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context, Result};

use gss::engine::cpu::isa::{self, IsaChoice};

use crate::RunConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Timed frames per round
    #[arg(long, default_value_t = 30)]
    frames: usize,
    /// Rounds per candidate, alternating between candidates
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measure and print, but do not record the choice
    #[arg(long)]
    dry_run: bool,
}

/// One candidate: whose kernels, and tract's kernel family (`TRACT_CPU_ISA` edit).
type Candidate = (&'static str, &'static str);

fn label((kernels, isa): Candidate) -> String {
    match (kernels, isa) {
        ("gss", _) => "gss kernels".into(),
        (_, "") => "tract default".into(),
        (_, isa) => format!("tract {isa}"),
    }
}

/// Frame p50 (ms) of one `gss bench` child process with `candidate` applied.
fn bench_once(config: &RunConfig, (kernels, isa): Candidate, frames: usize) -> Result<f64> {
    let exe = std::env::current_exe().context("locating the gss binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--model")
        .arg(&config.model_dir)
        .arg("--threads")
        .arg(config.threads_in_effect().to_string())
        .args(["--backend", "cpu"]);
    if let Some(v) = &config.variant {
        cmd.args(["--variant", v]);
    }
    cmd.args([
        "bench",
        "--json",
        "--frames",
        &frames.to_string(),
        "--warmup",
        "5",
    ]);
    cmd.env("GSS_ISA_CACHE", "off")
        .env("RUST_LOG", "warn")
        .env_remove("TRACT_CPU_ISA")
        .env("GSS_KERNELS", kernels);
    if !isa.is_empty() {
        cmd.env("TRACT_CPU_ISA", isa);
    }
    let out = cmd.output().context("running gss bench")?;
    if !out.status.success() {
        bail!(
            "gss bench with GSS_KERNELS={kernels} TRACT_CPU_ISA={isa:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading gss bench --json")?;
    report["stages"]["frame"]["p50_ms"]
        .as_f64()
        .context("gss bench --json has no frame p50")
}

pub fn run(config: &RunConfig, args: Args) -> Result<()> {
    anyhow::ensure!(
        args.frames > 0 && args.rounds > 0,
        "--frames and --rounds must be at least 1"
    );
    let package = config.open_package()?;
    if std::env::var_os("TRACT_CPU_ISA").is_some() {
        log::warn!(
            "TRACT_CPU_ISA is set in the environment; it overrides whatever gss tune records"
        );
    }
    // tract's families first; gss's kernels run the graphs they cover, tract the rest (with the
    // family chosen among tract's), so gss is measured once.
    let mut candidates: Vec<Candidate> = isa::candidates()
        .into_iter()
        .map(|i| ("tract", i))
        .collect();
    candidates.push(("gss", ""));
    let cpu = isa::cpu_model();
    println!(
        "measuring {} kernel choice(s) on {cpu}: {} on {} thread(s), {} rounds of {} frames",
        candidates.len(),
        package.manifest.name,
        config.threads_in_effect(),
        args.rounds,
        args.frames
    );
    let mut times: BTreeMap<Candidate, Vec<f64>> = BTreeMap::new();
    for _ in 0..args.rounds {
        for &c in &candidates {
            times
                .entry(c)
                .or_default()
                .push(bench_once(config, c, args.frames)?);
        }
    }
    let medians: BTreeMap<Candidate, f64> = times
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, v[v.len() / 2])
        })
        .collect();
    let (best, best_ms) = medians
        .iter()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, v)| (*k, *v))
        .context("no candidate ran")?;
    let best_tract = medians
        .iter()
        .filter(|(k, _)| k.0 == "tract")
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, _)| k.1)
        .unwrap_or("");
    println!("| kernels | frame p50 ms (median of rounds) | vs best |\n|---|---:|---:|");
    for (c, ms) in &medians {
        println!("| {} | {ms:.2} | {:.2}x |", label(*c), ms / best_ms);
    }
    let choice = IsaChoice {
        isa: best_tract.to_string(),
        model: package.manifest.name.clone(),
        threads: config.threads_in_effect(),
        frame_ms: medians.iter().map(|(k, v)| (label(*k), *v)).collect(),
        kernels: Some(best.0.to_string()),
    };
    if args.dry_run {
        println!("best: {} (not recorded: --dry-run)", label(best));
    } else {
        let file = isa::save_choice(&choice).context("recording the choice")?;
        println!(
            "best: {}; recorded in {} for {cpu}; later gss runs on this CPU apply it",
            label(best),
            file.display()
        );
    }
    Ok(())
}
