//! Rerun recordings (feature `rerun`) from a short stream on the fixture model: what the `.rrd`
//! holds, read back with rerun's own decoder, and a viewer that is not there, which must not
//! stop the stream.
#![cfg(feature = "rerun")]

mod common;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;

use common::{clip_frames, tiny_package};

use gss::engine::cpu::CpuBackend;
use gss::engine::BackendOptions;
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::sink::rerun::{paths, RerunReport, RerunSink, Target};

use rerun::external::re_log_encoding::rrd::DecoderApp;
use rerun::log::{Chunk, LogMsg};

/// Streams `n` frames losslessly into `target`; the pipeline's counters and the sink's report.
fn stream_into(target: Target, n: usize, tag: &str) -> (u64, RerunReport) {
    let package = tiny_package();
    let classes = package.manifest.classes.clone();
    let options = PipelineOptions {
        policy: Policy::Lossless,
        mode: Mode::Sequential,
        keep_frames: true,
        ..PipelineOptions::default()
    };
    let one_thread = BackendOptions {
        threads: 1,
        ..BackendOptions::default()
    };
    let mut pipeline = Pipeline::new(package, options, |p, graphs| {
        Ok(Box::new(CpuBackend::with_options(p, &one_thread, graphs)?))
    })
    .unwrap();
    let sink = RerunSink::open(target, &classes).unwrap();
    // Lossless here so the test knows how many frames reach the file; the binary subscribes
    // in real time.
    let logger = sink.spawn(pipeline.subscribe(2, Policy::Lossless)).unwrap();
    pipeline.run(clip_frames(n, tag)).unwrap();
    let stats = pipeline.join().unwrap();
    (stats.published, logger.join())
}

/// Per entity path: (rows on the timelines, rows logged static).
fn rows_per_entity(path: &PathBuf) -> BTreeMap<String, (usize, usize)> {
    let file = std::fs::File::open(path).unwrap();
    let mut rows = BTreeMap::new();
    for msg in DecoderApp::decode_lazy(BufReader::new(file)) {
        if let LogMsg::ArrowMsg(_, arrow) = msg.unwrap() {
            let chunk = Chunk::from_arrow_msg(&arrow).unwrap();
            let entry: &mut (usize, usize) =
                rows.entry(chunk.entity_path().to_string()).or_default();
            if chunk.is_static() {
                entry.1 += chunk.num_rows();
            } else {
                entry.0 += chunk.num_rows();
            }
        }
    }
    rows
}

#[test]
fn a_recording_holds_the_classes_once_and_every_frame_with_its_timings() {
    let path = std::env::temp_dir().join(format!("gss-rerun-{}.rrd", std::process::id()));
    let (published, report) = stream_into(Target::File(path.clone()), 4, "file");
    assert_eq!(published, 4);
    assert_eq!(
        (report.logged, report.skipped, report.problem.as_deref()),
        (4, 0, None),
        "{report:?}"
    );

    let rows = rows_per_entity(&path);
    assert_eq!(
        rows.get(&format!("/{}", paths::CAMERA)),
        Some(&(0, 1)),
        "{rows:?}"
    );
    assert_eq!(
        rows.get(&format!("/{}", paths::IMAGE)),
        Some(&(4, 0)),
        "{rows:?}"
    );
    assert_eq!(
        rows.get(&format!("/{}", paths::CLASSES)),
        Some(&(4, 0)),
        "{rows:?}"
    );
    for stage in paths::STAGES {
        assert_eq!(
            rows.get(&format!("/{}/{stage}", paths::TIMINGS)),
            Some(&(4, 0)),
            "{stage}: {rows:?}"
        );
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_viewer_that_is_not_there_skips_frames_and_the_stream_goes_on() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("rerun+http://127.0.0.1:{port}/proxy");
    let (published, report) = stream_into(Target::Viewer(url.clone()), 3, "noviewer");
    assert_eq!(published, 3);
    assert_eq!((report.logged, report.skipped), (0, 3), "{report:?}");
    assert_eq!(report.target, url);
}
