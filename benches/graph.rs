//! One ONNX graph on tract as gss plans it, or on gss's own kernels: p50 latency and, with
//! `--profile`, where the time goes per op and per node. For design probes on candidate networks
//! and export rewrites, before they become a package (`gss bench --profile` does the same on a
//! package's own graphs), and for what a kernel change buys (`--kernels gss-unfused` runs the
//! inverted-residual blocks as three kernels each). `--pair` also times two copies of each gss
//! program running at once on two OS threads, one thread each: what the machine gives two
//! independent streams, the ceiling for what splitting one graph over two threads can gain.
//!
//! `cargo bench --bench graph -- FILE.onnx... [--kernels tract|gss|gss-unfused] [--threads 1,2]
//!  [--runs 30] [--profile] [--pair] [--knob NAME=VALUE]... [--transform NAME]... [--max-token N]`
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
    kernels: Vec<String>,
    pair: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        files: vec![],
        threads: vec![1],
        runs: 30,
        profile: false,
        knobs: vec![],
        transforms: vec![],
        max_token: 512,
        kernels: vec![],
        pair: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--threads" => {
                a.threads = value("--threads")?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--threads: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => {
                a.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--max-token" => {
                a.max_token = value("--max-token")?
                    .parse()
                    .map_err(|e| format!("--max-token: {e}"))?
            }
            "--profile" => a.profile = true,
            "--pair" => a.pair = true,
            "--kernels" => a.kernels = value("--kernels")?.split(',').map(str::to_string).collect(),
            "--transform" => a.transforms.push(value("--transform")?),
            "--knob" => {
                let kv = value("--knob")?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or(format!("--knob {kv}: expected NAME=VALUE"))?;
                a.knobs.push((k.to_string(), v.to_string()));
            }
            f if !f.starts_with('-') => a.files.push(f.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.kernels.is_empty() {
        a.kernels.push("tract".into());
    }
    if let Some(k) = a
        .kernels
        .iter()
        .find(|k| !["tract", "gss", "gss-unfused"].contains(&k.as_str()))
    {
        return Err(format!("--kernels {k}: expected tract, gss or gss-unfused"));
    }
    if a.files.is_empty() {
        return Err("usage: cargo bench --bench graph -- FILE.onnx... [--threads 1,2] [--runs N] [--profile] [--knob K=V]".into());
    }
    Ok(a)
}

fn input_for(fact: &TypedFact, max_token: i64) -> Result<Tensor, String> {
    let shape: Vec<usize> = fact
        .shape
        .as_concrete()
        .ok_or(format!(
            "input shape {:?} is not concrete: export static shapes",
            fact.shape
        ))?
        .to_vec();
    let n: usize = shape.iter().product();
    let t = match fact.datum_type {
        DatumType::F32 => Tensor::from_shape(
            &shape,
            &(0..n)
                .map(|i| ((i * 7919) % 256) as f32)
                .collect::<Vec<_>>(),
        ),
        DatumType::I64 => Tensor::from_shape(
            &shape,
            &(0..n)
                .map(|i| (i as i64 * 7919) % max_token)
                .collect::<Vec<_>>(),
        ),
        other => {
            return Err(format!(
                "inputs of type {other:?} are not generated; extend input_for"
            ))
        }
    };
    t.map_err(|e| e.to_string())
}

fn main() {
    // The settings the gss binary runs with, so figures match `gss bench`.
    gss::process::configure();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse()?;
    let knobs: Vec<(&str, &str)> = args
        .knobs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let transforms: Vec<&str> = args.transforms.iter().map(String::as_str).collect();
    println!("| graph | kernels | threads | p50 ms | min ms |\n|---|---|---:|---:|---:|");
    let mut profiles = Vec::new();
    for &threads in &args.threads {
        for kernels in args.kernels.iter().filter(|k| k.starts_with("gss")) {
            for file in &args.files {
                gss_kernels(file, kernels, threads, &args, &mut profiles)?;
            }
        }
        if !args.kernels.iter().any(|k| k == "tract") {
            continue;
        }
        cpu::with_threads(threads, || -> Result<(), String> {
            for file in &args.files {
                let (plan, facts) = plan_onnx_file(file.as_ref(), &knobs, &transforms)
                    .map_err(|e| e.to_string())?;
                let inputs: TVec<TValue> = facts
                    .iter()
                    .map(|f| input_for(f, args.max_token).map(|t| t.into()))
                    .collect::<Result<_, _>>()?;
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
                println!(
                    "| {file} | tract | {threads} | {:.2} | {:.2} |",
                    percentile(&ms, 50.0),
                    ms[0]
                );
                if args.profile && inputs.len() == 1 {
                    let p = profile_plan(
                        &plan,
                        &inputs[0].clone().into_tensor(),
                        args.runs.min(10),
                        threads,
                    )
                    .map_err(|e| e.to_string())?;
                    profiles.push((format!("{file} (tract)"), threads, p));
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
            println!(
                "| {} ({}) | 1 | {t:.2} | {:.0} % |",
                n.name,
                n.op,
                100.0 * t / total
            );
        }
    }
    Ok(())
}

/// One graph on gss's kernels (`gss`) or with its inverted-residual blocks as three kernels each
/// (`gss-unfused`): the same lowering and executor the CPU backend runs.
fn gss_kernels(
    file: &str,
    kernels: &str,
    threads: usize,
    args: &Args,
    profiles: &mut Vec<(String, usize, gss::engine::cpu::GraphProfile)>,
) -> Result<(), String> {
    use gss::engine::cpu::kernels::Threads;
    use gss::engine::cpu::program::{Program, BACKEND};
    let (_, facts) = plan_onnx_file(file.as_ref(), &[], &[]).map_err(|e| e.to_string())?;
    let [fact] = facts.as_slice() else {
        return Err(format!("{file}: gss's kernels take graphs with one input"));
    };
    let graph = gss::engine::lowering::load(file.as_ref(), fact.clone(), BACKEND)
        .map_err(|e| e.to_string())?;
    let mut program =
        Program::with_blocks(&graph, file.as_ref(), kernels == "gss").map_err(|e| e.to_string())?;
    let input = input_for(fact, args.max_token)?;
    let values: Vec<f32> = match input.datum_type() {
        DatumType::F32 => input
            .to_plain_array_view::<f32>()
            .map_err(|e| e.to_string())?
            .iter()
            .copied()
            .collect(),
        // Integer inputs are token ids, held as u32 bits.
        _ => input
            .to_plain_array_view::<i64>()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|&t| f32::from_bits(t as u32))
            .collect(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let t = if threads > 1 {
        Threads::Pool(&pool)
    } else {
        Threads::One
    };
    let run = |program: &mut Program, timed: bool| -> Result<f64, String> {
        program.input_mut().copy_from_slice(&values);
        let t0 = Instant::now();
        program.run(t, timed)?;
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    };
    for _ in 0..3 {
        run(&mut program, false)?;
    }
    let mut ms = (0..args.runs)
        .map(|_| run(&mut program, false))
        .collect::<Result<Vec<f64>, String>>()?;
    ms.sort_by(f64::total_cmp);
    println!(
        "| {file} | {kernels} | {threads} | {:.2} | {:.2} |",
        percentile(&ms, 50.0),
        ms[0]
    );
    if args.pair && threads == 1 {
        let mut twin = Program::with_blocks(&graph, file.as_ref(), kernels == "gss")
            .map_err(|e| e.to_string())?;
        twin.input_mut().copy_from_slice(&values);
        program.input_mut().copy_from_slice(&values);
        let mut pair_ms = Vec::with_capacity(args.runs);
        for _ in 0..args.runs {
            let t0 = Instant::now();
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| program.run(Threads::One, false));
                let b = s.spawn(|| twin.run(Threads::One, false));
                (a.join(), b.join())
            });
            a.map_err(|_| "a run panicked")??;
            b.map_err(|_| "a run panicked")??;
            pair_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        pair_ms.sort_by(f64::total_cmp);
        println!(
            "| {file} | {kernels}, two copies at once, 1 thread each | 2 | {:.2} | {:.2} |",
            percentile(&pair_ms, 50.0),
            pair_ms[0]
        );
    }
    if args.profile {
        let runs = args.runs.min(10);
        program.reset_times();
        for _ in 0..runs {
            run(&mut program, true)?;
        }
        profiles.push((
            format!("{file} ({kernels})"),
            threads,
            gss::engine::cpu::profile_of_program(&program, runs),
        ));
    }
    Ok(())
}
