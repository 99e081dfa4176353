//! The zenoh sink end to end in one process: a pipeline publishes over a loopback TCP link (no
//! scouting) while zenoh sessions of the test subscribe, join late, and read the ROS 2 side.
#![cfg(feature = "zenoh")]

mod common;

use std::time::Duration;

use common::{PatternSource, Script, ScriptedBackend};
use gss::pipeline::{Pipeline, PipelineOptions, Policy};
use gss::sink::ros2;
use gss::sink::wire::{self, Ros2Options, SessionOptions, ZenohSinkOptions};
use gss::sink::zenoh::{open_session, ZenohSink};
use zenoh::Wait;

/// A loopback port free now (the OS picks it; the sink listens on it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connect_to(port: u16) -> SessionOptions {
    SessionOptions {
        connect: vec![format!("tcp/127.0.0.1:{port}")],
        ..SessionOptions::default()
    }
}

#[test]
fn frames_meta_and_ros2_images_reach_subscribers() {
    let package = common::tiny_package();
    let classes = package.manifest.classes.len();
    let mut pipeline = Pipeline::new(
        package,
        PipelineOptions {
            policy: Policy::RealTime,
            ..PipelineOptions::default()
        },
        |p, _| {
            Ok(Box::new(ScriptedBackend::new(
                p,
                Script::Works {
                    delay: Duration::from_millis(5),
                },
            )))
        },
    )
    .unwrap();
    let port = free_port();
    let key = "gss/test/masks";
    let topic = "/gss/test/classes";
    let options = ZenohSinkOptions {
        session: SessionOptions {
            listen: vec![format!("tcp/127.0.0.1:{port}")],
            ..SessionOptions::default()
        },
        key: Some(key.into()),
        ros2: Some(Ros2Options {
            topic: topic.into(),
            domain_id: 0,
            frame_id: "cam".into(),
            node_name: "gss".into(),
            overlay: false,
        }),
    };
    let sink = ZenohSink::start(&mut pipeline, &options).unwrap();
    let stop = pipeline.stop_handle();

    let session = open_session(&connect_to(port)).unwrap();
    let frames = session.declare_subscriber(key).wait().unwrap();
    let ros_key = ros2::topic_keyexpr(0, topic, ros2::IMAGE_TYPE_NAME, ros2::IMAGE_TYPE_HASH);
    let images = session.declare_subscriber(ros_key.as_str()).wait().unwrap();
    pipeline.run(PatternSource::new(40, 30, None)).unwrap();

    // Bounded: a few frames, each within a generous timeout.
    let mut last_seq = None;
    for _ in 0..4 {
        let sample = frames
            .recv_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("a frame within 20 s");
        let payload = sample.payload().to_bytes();
        let (header, pixels) = wire::parse_frame(&payload).expect("a gss-mask/1 frame");
        assert_eq!((header.width, header.height), (40, 30));
        assert!(pixels.iter().all(|&c| (c as usize) < classes || c == 255));
        assert!(last_seq.is_none_or(|s| header.seq > s), "frames in order");
        last_seq = Some(header.seq);
        let meta: serde_json::Value =
            serde_json::from_slice(&sample.attachment().expect("metadata").to_bytes()).unwrap();
        assert_eq!(meta["seq"], header.seq);
        assert_eq!(meta["source_index"], header.source_index);
        assert_eq!(
            (meta["width"].as_u64(), meta["height"].as_u64()),
            (Some(40), Some(30))
        );
        assert!(meta["latency_ms"].as_f64().unwrap() >= 0.0);
        for stage in ["preprocess", "prior", "decoder", "inverse", "resize"] {
            assert!(meta["timings_ms"][stage].is_number(), "{stage}");
        }
        assert!(meta["capture_unix_ns"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    }

    let mut last_sequence_number = 0;
    for _ in 0..2 {
        let sample = images
            .recv_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("a ROS 2 image within 20 s");
        let payload = sample.payload().to_bytes();
        assert_eq!(&payload[..4], &ros2::CDR_LE_HEADER);
        // height and width follow the stamp (8) and the frame_id "cam" (4 + 4).
        assert_eq!(&payload[20..28], &[30, 0, 0, 0, 40, 0, 0, 0]);
        // ... and the data's length comes right before the pixels.
        let n = payload.len() - 40 * 30;
        assert_eq!(&payload[n - 4..n], &(40u32 * 30).to_le_bytes());
        let attachment = sample
            .attachment()
            .expect("rmw_zenoh attachment")
            .to_bytes();
        assert_eq!(attachment.len(), ros2::ATTACHMENT_LEN);
        let sequence_number = i64::from_le_bytes(attachment[..8].try_into().unwrap());
        assert!(sequence_number > last_sequence_number);
        last_sequence_number = sequence_number;
        assert_eq!(attachment[16], 16);
    }

    // A subscriber that joins now still gets the classes, from the queryable.
    let late = open_session(&connect_to(port)).unwrap();
    let replies = late
        .get(wire::meta_key(key))
        .timeout(Duration::from_secs(20))
        .wait()
        .unwrap();
    let reply = replies.recv().expect("a reply to the meta query");
    let meta: serde_json::Value =
        serde_json::from_slice(&reply.result().expect("meta").payload().to_bytes()).unwrap();
    assert_eq!(meta["format"], "gss-mask/1");
    assert_eq!(meta["model"], "gss-tiny");
    assert_eq!(meta["classes"].as_array().unwrap().len(), classes);
    assert_eq!(meta["classes"][0]["name"], "road");
    assert_eq!(
        meta["classes"][0]["color"],
        serde_json::json!([128, 64, 128])
    );

    // The ROS 2 graph sees a node and a publisher of sensor_msgs/msg/Image.
    let tokens = late
        .liveliness()
        .get("@ros2_lv/0/**")
        .timeout(Duration::from_secs(20))
        .wait()
        .unwrap();
    let mut keys = Vec::new();
    while let Ok(reply) = tokens.recv() {
        if let Ok(sample) = reply.result() {
            keys.push(sample.key_expr().to_string());
        }
    }
    let zid = sink.zid().to_string();
    assert!(
        keys.contains(&format!("@ros2_lv/0/{zid}/0/0/NN/%/%/gss")),
        "{keys:?}"
    );
    let publisher = format!(
        "@ros2_lv/0/{zid}/0/1/MP/%/%/gss/%gss%test%classes/{}/{}/2::,5:,:,:,,",
        ros2::IMAGE_TYPE_NAME,
        ros2::IMAGE_TYPE_HASH
    );
    assert!(keys.contains(&publisher), "{keys:?}");

    stop.stop();
    pipeline.join().unwrap();
    let stats = sink.join().unwrap();
    assert!(stats.published >= 4);
    assert_eq!(stats.failed, 0);
}

#[test]
fn a_sink_with_nothing_to_publish_or_a_bad_topic_is_refused() {
    let package = common::tiny_package();
    let mut pipeline = Pipeline::new(package, PipelineOptions::default(), |p, _| {
        Ok(Box::new(ScriptedBackend::new(
            p,
            Script::Works {
                delay: Duration::ZERO,
            },
        )))
    })
    .unwrap();
    let err = ZenohSink::start(&mut pipeline, &ZenohSinkOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("nothing to publish"), "{err}");
    let bad = ZenohSinkOptions {
        ros2: Some(Ros2Options {
            topic: "no/slash".into(),
            domain_id: 0,
            frame_id: "cam".into(),
            node_name: "gss".into(),
            overlay: false,
        }),
        ..ZenohSinkOptions::default()
    };
    let err = ZenohSink::start(&mut pipeline, &bad).err().unwrap();
    assert!(err.to_string().contains("fully qualified"), "{err}");
}

/// A subscriber that takes one sample and then never returns from its callback stalls its end of
/// the link. The stream still delivers every frame to its own lossless consumer, and with
/// congestion control *drop* the sink keeps putting (zenoh drops what the link cannot take), so it
/// keeps up with the stream: it published 182-199 of the 200 frames here. A blocking put waits
/// until zenoh gives up on the link (seconds), and the sink then publishes 17-23 while its queue
/// loses the rest, which the count below catches.
#[test]
fn a_subscriber_that_stops_reading_does_not_hold_up_the_stream_or_the_sink() {
    let package = common::tiny_package();
    let mut pipeline = Pipeline::new(
        package,
        PipelineOptions {
            policy: Policy::Lossless,
            ..PipelineOptions::default()
        },
        |p, _| {
            Ok(Box::new(ScriptedBackend::new(
                p,
                Script::Works {
                    delay: Duration::ZERO,
                },
            )))
        },
    )
    .unwrap();
    let port = free_port();
    let key = "gss/test/stalled";
    let options = ZenohSinkOptions {
        session: SessionOptions {
            listen: vec![format!("tcp/127.0.0.1:{port}")],
            ..SessionOptions::default()
        },
        key: Some(key.into()),
        ros2: None,
    };
    let sink = ZenohSink::start(&mut pipeline, &options).unwrap();
    let own = pipeline.subscribe(256, Policy::Lossless);

    let session = open_session(&connect_to(port)).unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
    let gate_rx = std::sync::Mutex::new(gate_rx);
    let _stalled = session
        .declare_subscriber(key)
        .callback(move |_sample| {
            let _ = first_tx.send(());
            // Blocks zenoh's receive side until the test lets go: nothing more is read meanwhile.
            let _ = gate_rx.lock().map(|rx| rx.recv());
        })
        .wait()
        .unwrap();

    // Frames of 640×480 (300 KB of class ids each): 200 of them are far more than the link's
    // buffers hold once the subscriber has stopped reading.
    let frames = 200;
    pipeline
        .run(common::PatternSource::new(640, 480, Some(frames)))
        .unwrap();
    first_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the subscriber got a first frame");
    let mut received = 0;
    while own.recv_timeout(Duration::from_secs(60)).is_ok() {
        received += 1;
    }
    assert_eq!(
        received, frames,
        "the stream's own consumer got every frame"
    );

    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(pipeline.join().map(|stats| (stats, sink.join())));
    });
    let outcome = done_rx.recv_timeout(Duration::from_secs(60));
    drop(gate_tx);
    let (stats, sink_stats) = outcome
        .expect("the pipeline and the sink stopped while the subscriber was stalled")
        .unwrap();
    let sink_stats = sink_stats.unwrap();
    assert_eq!(stats.published, frames);
    let lost = stats.subscribers[0].dropped;
    assert!(
        sink_stats.published >= frames / 2 && sink_stats.failed == 0,
        "{sink_stats:?}, {lost} lost by the sink's queue"
    );
}

/// Sockets of this process in `/proc/net/{tcp,tcp6,udp,udp6}` (hex local address, state), found
/// through the inodes of its descriptors.
fn own_sockets(table: &str) -> Vec<(String, String)> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 9 && inodes.contains(f[9])).then(|| (f[1].to_string(), f[3].to_string()))
        })
        .collect()
}

/// Whether a hex address from /proc/net (IPv4 `0100007F:port` or IPv6) is loopback.
fn is_loopback(hex: &str) -> bool {
    let ip = hex.split(':').next().unwrap_or("");
    ip == "0100007F" || ip == "00000000000000000000000001000000"
}

#[test]
fn a_session_listens_on_loopback_and_scouts_only_when_a_config_file_says_so() {
    // A peer with nothing said: its listener is on loopback only, and no scouting socket.
    let session = open_session(&SessionOptions::default()).unwrap();
    let listening: Vec<_> = ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| own_sockets(t))
        .filter(|(_, state)| state == "0A")
        .collect();
    assert!(!listening.is_empty(), "the peer listens nowhere");
    assert!(
        listening.iter().all(|(addr, _)| is_loopback(addr)),
        "a listener beyond loopback: {listening:?}"
    );
    // A config file that says nothing of scouting or listening keeps both defaults.
    let dir = std::env::temp_dir().join(format!("gss-zenoh-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let quiet = dir.join("quiet.json5");
    std::fs::write(
        &quiet,
        "{ // nothing about scouting\n  timestamping: { enabled: { peer: false } },\n}\n",
    )
    .unwrap();
    let with_file = open_session(&SessionOptions {
        config_file: Some(quiet),
        ..SessionOptions::default()
    })
    .unwrap();
    let udp: Vec<_> = ["udp", "udp6"]
        .iter()
        .flat_map(|t| own_sockets(t))
        .collect();
    // zenoh's multicast scouting binds UDP port 7446 (0x1D16).
    assert!(
        !udp.iter().any(|(addr, _)| addr.ends_with(":1D16")),
        "multicast scouting is on: {udp:?}"
    );
    let listening: Vec<_> = ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| own_sockets(t))
        .filter(|(_, state)| state == "0A")
        .collect();
    assert!(
        listening.iter().all(|(addr, _)| is_loopback(addr)),
        "a listener beyond loopback: {listening:?}"
    );
    // zenoh also takes YAML files; what they set is read the same way.
    let yaml = dir.join("quiet.yaml");
    std::fs::write(&yaml, "timestamping:\n  enabled:\n    peer: false\n").unwrap();
    let with_yaml = open_session(&SessionOptions {
        config_file: Some(yaml),
        ..SessionOptions::default()
    })
    .unwrap();
    let udp: Vec<_> = ["udp", "udp6"]
        .iter()
        .flat_map(|t| own_sockets(t))
        .collect();
    assert!(
        !udp.iter().any(|(addr, _)| addr.ends_with(":1D16")),
        "multicast scouting is on: {udp:?}"
    );
    let listening: Vec<_> = ["tcp", "tcp6"]
        .iter()
        .flat_map(|t| own_sockets(t))
        .filter(|(_, state)| state == "0A")
        .collect();
    assert!(
        listening.iter().all(|(addr, _)| is_loopback(addr)),
        "a listener beyond loopback: {listening:?}"
    );
    drop((session, with_file, with_yaml));
    std::fs::remove_dir_all(dir).unwrap();
}

/// zenoh over TLS on loopback with user/password authentication, all set by config files as a
/// user would: a subscriber with the credentials receives frames, one without receives nothing.
#[test]
fn over_tls_only_a_subscriber_with_credentials_receives_frames() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("gss-zenoh-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, dict) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("users.txt"),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(&dict, "viewer:s3cret\n").unwrap();
    let port = free_port();
    let write_config = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Some(path)
    };
    let publisher = write_config(
        "gss.json5",
        format!(
            r#"{{ listen: {{ endpoints: ["tls/localhost:{port}"] }},
               transport: {{ link: {{ tls: {{ listen_certificate: {cert:?}, listen_private_key: {key:?} }} }},
                             auth: {{ usrpwd: {{ user: "gss", password: "publisher", dictionary_file: {dict:?} }} }} }} }}"#
        ),
    );
    let subscriber = |name: &str, auth: &str| {
        write_config(
            name,
            format!(
                r#"{{ connect: {{ endpoints: ["tls/localhost:{port}"] }},
                   transport: {{ link: {{ tls: {{ root_ca_certificate: {cert:?} }} }}{auth} }} }}"#
            ),
        )
    };
    let with = subscriber(
        "with.json5",
        r#", auth: { usrpwd: { user: "viewer", password: "s3cret" } }"#,
    );
    let without = subscriber("without.json5", "");

    let package = common::tiny_package();
    let mut pipeline = Pipeline::new(
        package,
        PipelineOptions {
            policy: Policy::RealTime,
            ..PipelineOptions::default()
        },
        |p, _| {
            Ok(Box::new(ScriptedBackend::new(
                p,
                Script::Works {
                    delay: Duration::from_millis(5),
                },
            )))
        },
    )
    .unwrap();
    let key_expr = "gss/test/tls";
    let options = ZenohSinkOptions {
        session: SessionOptions {
            config_file: publisher,
            ..SessionOptions::default()
        },
        key: Some(key_expr.into()),
        ros2: None,
    };
    let sink = ZenohSink::start(&mut pipeline, &options).unwrap();
    let listen = |config| {
        let session = open_session(&SessionOptions {
            config_file: config,
            ..SessionOptions::default()
        })
        .ok()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let subscriber = session
            .declare_subscriber(key_expr)
            .callback(move |sample| {
                let _ = tx.send(sample.payload().to_bytes().len());
            })
            .wait()
            .unwrap();
        Some((session, subscriber, rx))
    };
    let (_s1, _sub1, with_rx) = listen(with).expect("the session with credentials opened");
    let refused = listen(without);
    pipeline.run(PatternSource::new(32, 24, Some(400))).unwrap();
    let first = with_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("frames reach the subscriber with credentials");
    assert_eq!(first, wire::HEADER_LEN + 32 * 24);
    std::thread::sleep(Duration::from_millis(500));
    // A peer's session opens whether or not its connection is accepted (zenoh retries): it
    // must be there, hearing nothing, for this check to mean anything.
    let (_, _, refused_rx) = refused
        .as_ref()
        .expect("the session without credentials opened");
    assert!(
        refused_rx.try_recv().is_err(),
        "a subscriber without credentials received a frame"
    );
    pipeline.stop();
    pipeline.join().unwrap();
    sink.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
