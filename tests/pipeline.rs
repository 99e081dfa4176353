//! The streaming pipeline on the fixture model: ordering, drop accounting, corrupt frames,
//! shutdown, unsubscribing, and stages that fail.

mod common;

use common::{clip_frames, root, PatternSource, Script, ScriptedBackend};

use std::time::Duration;

use gss::engine::cpu::CpuBackend;
use gss::engine::BackendOptions;
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::source::ImageFiles;
use gss::ModelPackage;

fn pipeline(options: PipelineOptions) -> Pipeline {
    let package = ModelPackage::open(root().join("tests/fixtures/gss-tiny")).unwrap();
    let one_thread = BackendOptions {
        threads: 1,
        ..BackendOptions::default()
    };
    Pipeline::new(package, options, |p, graphs| {
        Ok(Box::new(CpuBackend::with_options(p, &one_thread, graphs)?))
    })
    .unwrap()
}

fn lossless(mode: Mode) -> PipelineOptions {
    PipelineOptions {
        policy: Policy::Lossless,
        mode,
        ..PipelineOptions::default()
    }
}

#[test]
fn lossless_directory_delivers_every_frame_in_order_in_both_modes() {
    for mode in [Mode::Pipelined, Mode::Sequential] {
        let mut p = pipeline(lossless(mode));
        let rx = p.subscribe(2, Policy::Lossless);
        p.run(clip_frames(12, "pipe")).unwrap();
        let frames: Vec<_> = rx.iter().collect();
        let stats = p.join().unwrap();
        assert_eq!(
            frames.iter().map(|m| m.seq).collect::<Vec<_>>(),
            (0..12).collect::<Vec<_>>(),
            "{mode:?}"
        );
        assert!(frames
            .iter()
            .all(|m| m.classes.dimensions() == (512, 256) && m.frame.is_none()));
        assert_eq!(
            (
                stats.captured,
                stats.processed,
                stats.published,
                stats.dropped(),
                stats.failed
            ),
            (12, 12, 12, 0, 0),
            "{mode:?}"
        );
        assert_eq!(stats.subscribers[0].delivered, 12);
    }
}

#[test]
fn a_slow_subscriber_loses_only_its_own_frames_and_the_counts_balance() {
    let mut p = pipeline(lossless(Mode::Pipelined));
    let fast = p.subscribe(1, Policy::Lossless);
    let slow = p.subscribe(1, Policy::RealTime);
    p.run(clip_frames(20, "pipe")).unwrap();
    let slow_reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        for m in slow.iter() {
            got.push(m.seq);
            std::thread::sleep(Duration::from_millis(150));
        }
        got
    });
    let fast_got: Vec<u64> = fast.iter().map(|m| m.seq).collect();
    let slow_got = slow_reader.join().unwrap();
    let stats = p.join().unwrap();
    assert_eq!(fast_got, (0..20).collect::<Vec<_>>());
    assert_eq!(stats.published, 20);
    let s = &stats.subscribers[1];
    assert!(
        s.dropped > 0,
        "the slow subscriber should have lost frames: {stats:?}"
    );
    assert_eq!(s.delivered + s.dropped, stats.published);
    assert_eq!(s.delivered, slow_got.len() as u64);
    assert!(slow_got.windows(2).all(|w| w[0] < w[1]), "{slow_got:?}");
    assert_eq!(
        stats.subscribers[0],
        gss::pipeline::SubscriberStats {
            delivered: 20,
            dropped: 0
        }
    );
}

#[test]
fn real_time_stages_drop_the_oldest_and_account_for_every_frame() {
    let mut p = pipeline(PipelineOptions {
        policy: Policy::RealTime,
        ..PipelineOptions::default()
    });
    let rx = p.subscribe(1, Policy::RealTime);
    p.run(clip_frames(40, "pipe")).unwrap();
    let got: Vec<u64> = rx.iter().map(|m| m.seq).collect();
    let stats = p.join().unwrap();
    assert_eq!(stats.captured, 40);
    assert_eq!(
        stats.captured,
        stats.published + stats.dropped() + stats.failed,
        "{stats:?}"
    );
    assert!(got.windows(2).all(|w| w[0] < w[1]));
    // the newest frame always survives a drop-oldest queue
    assert_eq!(got.last(), Some(&39));
}

#[test]
fn a_corrupt_jpeg_in_the_middle_is_skipped_and_counted() {
    let files = clip_frames(4, "pipe");
    let dir = files.paths()[0].parent().unwrap().to_path_buf();
    let bad = dir.join("frame_000001.jpg");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let mut p = pipeline(lossless(Mode::Pipelined));
    let rx = p.subscribe(4, Policy::Lossless);
    p.run(ImageFiles::from_dir(&dir).unwrap()).unwrap();
    let indices: Vec<u64> = rx.iter().map(|m| m.source_index).collect();
    let stats = p.join().unwrap();
    assert_eq!(indices, vec![0, 2, 3]);
    assert_eq!((stats.captured, stats.corrupt, stats.published), (3, 1, 3));
}

#[test]
fn stop_ends_an_endless_source_and_joins_every_thread() {
    let mut p = pipeline(PipelineOptions::default());
    let rx = p.subscribe(1, Policy::RealTime);
    p.run(
        clip_frames(3, "pipe")
            .looping(true)
            .with_fps(200.0)
            .unwrap(),
    )
    .unwrap();
    // In real time a busy test machine may lose the first frames to eviction; which one comes
    // first is not the point.
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("frames flow");
    assert_eq!(first.classes.dimensions(), (512, 256));
    p.stop();
    // the channel closes once the stages have drained
    while rx.recv_timeout(Duration::from_secs(30)).is_ok() {}
    let stats = p.join().unwrap();
    assert_eq!(
        stats.captured,
        stats.published + stats.dropped() + stats.failed,
        "{stats:?}"
    );
}

fn scripted(options: PipelineOptions, script: Script) -> Pipeline {
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    Pipeline::new(common::tiny_package(), options, move |p, _| {
        Ok(Box::new(ScriptedBackend::counting(
            p,
            script,
            frames.clone(),
        )))
    })
    .unwrap()
}

#[test]
fn dropping_a_subscription_unsubscribes_under_both_policies() {
    for mode in [Mode::Pipelined, Mode::Sequential] {
        let mut p = scripted(
            PipelineOptions {
                policy: Policy::Lossless,
                mode,
                ..PipelineOptions::default()
            },
            Script::Works {
                delay: Duration::ZERO,
            },
        );
        let watcher = p.subscribe(1, Policy::Lossless);
        let real_time = p.subscribe(1, Policy::RealTime);
        let lossless = p.subscribe(1, Policy::Lossless);
        drop(real_time);
        drop(lossless);
        // Had the lossless subscriber not gone away, its full queue would block the pipeline
        // after two frames and this would never end.
        p.run(PatternSource::new(128, 64, Some(60))).unwrap();
        assert_eq!(watcher.iter().count(), 60, "{mode:?}");
        let stats = p.join().unwrap();
        assert_eq!(stats.published, 60);
        for gone in &stats.subscribers[1..] {
            assert_eq!(
                gone.delivered, 0,
                "{mode:?}: a dropped subscription gets nothing: {stats:?}"
            );
        }
    }
}

#[test]
fn a_subscription_dropped_mid_stream_stops_receiving() {
    let mut p = scripted(
        PipelineOptions {
            policy: Policy::Lossless,
            ..PipelineOptions::default()
        },
        Script::Works {
            delay: Duration::from_millis(2),
        },
    );
    let watcher = p.subscribe(1, Policy::Lossless);
    let leaving = p.subscribe(1, Policy::RealTime);
    p.run(PatternSource::new(128, 64, Some(80))).unwrap();
    let first = leaving
        .recv_timeout(Duration::from_secs(30))
        .expect("frames flow");
    drop(leaving);
    let seen = watcher.iter().count();
    let stats = p.join().unwrap();
    assert_eq!(seen, 80);
    let gone = &stats.subscribers[1];
    assert!(
        gone.delivered + gone.dropped < stats.published,
        "queueing stopped after the drop: {stats:?} (first {})",
        first.seq
    );
}

#[test]
fn a_stage_error_stops_an_endless_stream_and_reaches_join() {
    for mode in [Mode::Pipelined, Mode::Sequential] {
        let mut p = scripted(
            PipelineOptions {
                mode,
                ..PipelineOptions::default()
            },
            Script::DeviceLostAt { at: 5 },
        );
        let rx = p.subscribe(2, Policy::RealTime);
        p.run(PatternSource::new(128, 64, None)).unwrap();
        // The channel closes: every stage has ended although the source never does.
        while rx.recv_timeout(Duration::from_secs(30)).is_ok() {}
        match p.join() {
            Err(gss::Error::Gpu { msg }) => assert_eq!(msg, "device lost"),
            other => panic!("{mode:?}: expected the stage's error, got {other:?}"),
        }
    }
}

#[test]
fn a_stage_that_panics_stops_the_stream_and_join_names_it() {
    for mode in [Mode::Pipelined, Mode::Sequential] {
        let mut p = scripted(
            PipelineOptions {
                mode,
                ..PipelineOptions::default()
            },
            Script::PanicsAt { at: 3 },
        );
        let rx = p.subscribe(2, Policy::RealTime);
        p.run(PatternSource::new(128, 64, None)).unwrap();
        while rx.recv_timeout(Duration::from_secs(30)).is_ok() {}
        match p.join() {
            Err(gss::Error::StagePanicked { stage, msg }) => {
                assert!(stage.starts_with("gss-"), "{stage}");
                assert!(msg.contains("scripted panic at frame 3"), "{msg}");
            }
            other => panic!("{mode:?}: expected the panic, got {other:?}"),
        }
    }
}

#[test]
fn a_slow_backend_in_real_time_drops_frames_and_every_frame_is_accounted_for() {
    for mode in [Mode::Pipelined, Mode::Sequential] {
        let mut p = scripted(
            PipelineOptions {
                mode,
                ..PipelineOptions::default()
            },
            Script::Works {
                delay: Duration::from_millis(20),
            },
        );
        let rx = p.subscribe(4, Policy::RealTime);
        // The source is as fast as memory: hundreds of frames arrive while one is segmented.
        p.run(PatternSource::new(128, 64, Some(300))).unwrap();
        let got: Vec<u64> = rx.iter().map(|m| m.seq).collect();
        let stats = p.join().unwrap();
        assert_eq!(stats.captured, 300);
        assert!(
            stats.dropped_before_prior > 0,
            "{mode:?}: the capture queue must have dropped frames: {stats:?}"
        );
        assert!(
            stats.published < 300
                && stats.published as usize == got.len() + stats.subscribers[0].dropped as usize
        );
        assert_eq!(
            stats.captured,
            stats.published + stats.dropped() + stats.failed,
            "{stats:?}"
        );
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn a_stop_handle_taken_before_run_also_wakes_a_sleeping_source() {
    let mut p = scripted(
        PipelineOptions::default(),
        Script::Works {
            delay: Duration::ZERO,
        },
    );
    // Taken first, as a Ctrl-C handler is.
    let stop = p.stop_handle();
    let rx = p.subscribe(1, Policy::RealTime);
    // One frame every 10 s: after the first, the source sleeps in its pacing.
    p.run(clip_frames(2, "pipe").looping(true).with_fps(0.1).unwrap())
        .unwrap();
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the first frame comes at once");
    let start = std::time::Instant::now();
    stop.stop();
    while rx.recv_timeout(Duration::from_secs(30)).is_ok() {}
    p.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the source slept through the stop: {:?}",
        start.elapsed()
    );
}
