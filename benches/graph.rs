//! One ONNX graph on tract as gss plans it: p50 latency and, with `--profile`, where the time
//! goes per op and per node. For design probes on candidate networks and export rewrites, before
//! they become a package (`gss bench --profile` does the same on a package's own graphs).
//!
//! `cargo bench --bench graph -- FILE.onnx... [--threads 1,2] [--runs 30] [--profile]
//!  [--knob NAME=VALUE]... [--transform NAME]... [--max-token N]`
//! Inputs get deterministic values: floats in 0..255 (an image), integers in 0..N (token ids).

use std::time::Instant;

use gss::engine::cpu::{self, plan_onnx_file, profile_plan};
use gss::sink::stats::percentile;
use tract_onnx::prelude::*;

struct Args {
    files: Vec<String>,
    threads: Vec<usize>,
    runs: usize,
    profile: bool,
    knobs: Vec<(String, String)>,
    transforms: Vec<String>,
    max_token: i64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args { files: vec![], threads: vec![1], runs: 30, profile: false, knobs: vec![], transforms: vec![], max_token: 512 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--threads" => a.threads = value("--threads")?.split(',').map(|t| t.parse().map_err(|e| format!("--threads: {e}"))).collect::<Result<_, _>>()?,
            "--runs" => a.runs = value("--runs")?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--max-token" => a.max_token = value("--max-token")?.parse().map_err(|e| format!("--max-token: {e}"))?,
            "--profile" => a.profile = true,
            "--transform" => a.transforms.push(value("--transform")?),
            "--knob" => {
                let kv = value("--knob")?;
                let (k, v) = kv.split_once('=').ok_or(format!("--knob {kv}: expected NAME=VALUE"))?;
                a.knobs.push((k.to_string(), v.to_string()));
            }
            f if !f.starts_with('-') => a.files.push(f.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.files.is_empty() {
        return Err("usage: cargo bench --bench graph -- FILE.onnx... [--threads 1,2] [--runs N] [--profile] [--knob K=V]".into());
    }
    Ok(a)
}

fn input_for(fact: &TypedFact, max_token: i64) -> Result<Tensor, String> {
    let shape: Vec<usize> = fact.shape.as_concrete().ok_or(format!("input shape {:?} is not concrete: export static shapes", fact.shape))?.to_vec();
    let n: usize = shape.iter().product();
    let t = match fact.datum_type {
        DatumType::F32 => Tensor::from_shape(&shape, &(0..n).map(|i| ((i * 7919) % 256) as f32).collect::<Vec<_>>()),
        DatumType::I64 => Tensor::from_shape(&shape, &(0..n).map(|i| (i as i64 * 7919) % max_token).collect::<Vec<_>>()),
        other => return Err(format!("inputs of type {other:?} are not generated; extend input_for")),
    };
    t.map_err(|e| e.to_string())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse()?;
    let knobs: Vec<(&str, &str)> = args.knobs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let transforms: Vec<&str> = args.transforms.iter().map(String::as_str).collect();
    println!("| graph | threads | p50 ms | min ms |\n|---|---:|---:|---:|");
    let mut profiles = Vec::new();
    for &threads in &args.threads {
      cpu::with_threads(threads, || -> Result<(), String> {
        for file in &args.files {
            let (plan, facts) = plan_onnx_file(file.as_ref(), &knobs, &transforms).map_err(|e| e.to_string())?;
            let inputs: TVec<TValue> = facts.iter().map(|f| input_for(f, args.max_token).map(|t| t.into())).collect::<Result<_, _>>()?;
            let mut state = plan.spawn().map_err(|e| e.to_string())?;
            for _ in 0..3 {
                state.run(inputs.clone()).map_err(|e| e.to_string())?;
            }
            let mut ms = Vec::with_capacity(args.runs);
            for _ in 0..args.runs {
                let t = Instant::now();
                state.run(inputs.clone()).map_err(|e| e.to_string())?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            ms.sort_by(f64::total_cmp);
            println!("| {file} | {threads} | {:.2} | {:.2} |", percentile(&ms, 50.0), ms[0]);
            if args.profile && inputs.len() == 1 {
                let p = profile_plan(&plan, &inputs[0].clone().into_tensor(), args.runs.min(10), threads).map_err(|e| e.to_string())?;
                profiles.push((file.clone(), threads, p));
            }
        }
        Ok(())
      })?;
    }
    for (file, threads, p) in profiles {
        let total = p.total().as_secs_f64() * 1e3;
        println!("\n{file}, {threads} thread(s): {total:.2} ms in nodes\n| op | nodes | ms | share |\n|---|---:|---:|---:|");
        for (op, n, t) in p.by_op() {
            let t = t.as_secs_f64() * 1e3;
            println!("| {op} | {n} | {t:.2} | {:.0} % |", 100.0 * t / total);
        }
        println!("| **top nodes** | | | |");
        for n in p.top_nodes(8) {
            let t = n.mean.as_secs_f64() * 1e3;
            println!("| {} ({}) | 1 | {t:.2} | {:.0} % |", n.name, n.op, 100.0 * t / total);
        }
    }
    Ok(())
}
