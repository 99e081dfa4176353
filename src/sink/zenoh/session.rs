//! The zenoh sink (feature `zenoh`): a pipeline subscriber on a thread of its own that publishes
//! every [`MaskFrame`] as a `gss-mask/1` sample ([`crate::sink::wire`]) and/or as a ROS 2
//! `sensor_msgs/msg/Image` the rmw_zenoh way ([`crate::sink::ros2`]).
//!
//! It subscribes with [`Policy::RealTime`] and publishes frames with
//! `CongestionControl::Drop`: a slow network or subscriber loses frames here and never slows
//! the pipeline; a peer that goes away is zenoh's business and the stream goes on.

use std::sync::Arc;
use std::thread::JoinHandle;

use image::RgbImage;
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::Wait;

use crate::model::ModelPackage;
use crate::pipeline::{MaskFrame, Pipeline, Policy, Subscription};
use crate::sink::ros2::{self, NodeId, Qos};
pub use crate::sink::wire::SinkStats;
use crate::sink::wire::{self, Ros2Options, SessionOptions, ZenohSinkOptions};
use crate::{Error, Result};

/// Frames the sink's own queue holds before it drops the oldest.
const QUEUE: usize = 2;

fn zenoh_error(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Zenoh {
        what: what.into(),
        msg: e.to_string(),
    }
}

/// Opens a zenoh session: the config file if any, then peer (or client) mode and the given
/// endpoints. Safe by default: multicast scouting is off unless the config file turns it on, and
/// a peer listens on loopback only unless `--zenoh-listen` or the config file says where, so
/// that other machines reach gss only where they are told to.
pub fn open_session(options: &SessionOptions) -> Result<zenoh::Session> {
    let (mut config, file) = match &options.config_file {
        Some(path) => {
            let config = zenoh::Config::from_file(path)
                .map_err(|e| zenoh_error(format!("config {}", path.display()), e))?;
            (config, chosen_in_file(path)?)
        }
        None => (zenoh::Config::default(), serde_json::Value::Null),
    };
    let set = |config: &mut zenoh::Config, key: &str, value: String| {
        config
            .insert_json5(key, &value)
            .map_err(|e| zenoh_error(format!("config {key} = {value}"), e))
    };
    set(
        &mut config,
        "mode",
        if options.client {
            "\"client\"".into()
        } else {
            "\"peer\"".into()
        },
    )?;
    if file.pointer("/scouting/multicast/enabled") != Some(&serde_json::Value::Bool(true)) {
        set(&mut config, "scouting/multicast/enabled", "false".into())?;
    }
    let list =
        |endpoints: &[String]| serde_json::to_string(endpoints).unwrap_or_else(|_| "[]".into());
    if !options.connect.is_empty() {
        set(&mut config, "connect/endpoints", list(&options.connect))?;
    }
    let listen = match (&options.listen[..], file.pointer("/listen/endpoints")) {
        (given @ [_, ..], _) => Some(given.to_vec()),
        // A client does not listen; a peer listens where it is told, else on loopback only.
        ([], None) if !options.client => Some(vec![LOOPBACK_LISTEN.to_string()]),
        ([], _) => None,
    };
    if let Some(listen) = listen {
        set(&mut config, "listen/endpoints", list(&listen))?;
    }
    zenoh::open(config).wait().map_err(|e| {
        zenoh_error(
            "opening the session (check --zenoh-connect/--zenoh-listen)",
            e,
        )
    })
}

/// What a zenoh config file itself sets, parsed the way zenoh picks its format (by extension:
/// JSON5 or YAML). zenoh's loaded config has its defaults filled in and cannot tell a default
/// from a choice.
fn chosen_in_file(path: &std::path::Path) -> Result<serde_json::Value> {
    let bad = |e: &dyn std::fmt::Display| zenoh_error(format!("config {}", path.display()), e);
    let text = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => serde_yaml::from_str(&text).map_err(|e| bad(&e)),
        _ => json5::from_str(&text).map_err(|e| bad(&e)),
    }
}

/// Where a peer listens when nothing says otherwise: this machine only, on a port the OS picks.
pub const LOOPBACK_LISTEN: &str = "tcp/127.0.0.1:0";

/// An owned buffer that zenoh can send without a copy and that comes back for the next frame
/// once zenoh has let go of it (a new one is made only while zenoh still holds the last).
struct Recycled(Arc<Vec<u8>>);

struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Recycled {
    fn new() -> Self {
        Recycled(Arc::new(Vec::new()))
    }

    fn fill(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> ZBytes {
        if Arc::get_mut(&mut self.0).is_none() {
            self.0 = Arc::new(Vec::with_capacity(self.0.len()));
        }
        // Unique by now, so this never clones.
        let buf = Arc::make_mut(&mut self.0);
        buf.clear();
        write(buf);
        ZBytes::from(bytes::Bytes::from_owner(Shared(self.0.clone())))
    }
}

/// The running sink. It stops when the pipeline does; [`ZenohSink::join`] waits for that.
pub struct ZenohSink {
    thread: JoinHandle<SinkStats>,
    zid: String,
}

impl ZenohSink {
    /// Opens the session, declares every publisher, queryable and token (errors surface here,
    /// before the stream starts), subscribes to `pipeline` (in real time, queue of two) and
    /// starts publishing. Call it before [`Pipeline::run`].
    pub fn start(pipeline: &mut Pipeline, options: &ZenohSinkOptions) -> Result<ZenohSink> {
        let package = pipeline.package().clone();
        let frames = pipeline.subscribe(QUEUE, Policy::RealTime);
        Self::start_with(&package, frames, options)
    }

    /// [`ZenohSink::start`] on a subscription made by the caller.
    pub fn start_with(
        package: &ModelPackage,
        frames: Subscription,
        options: &ZenohSinkOptions,
    ) -> Result<ZenohSink> {
        if options.key.is_none() && options.ros2.is_none() {
            return Err(Error::InvalidOption {
                option: "zenoh",
                msg: "nothing to publish: give a key (--zenoh) or a ROS 2 topic (--ros2)".into(),
            });
        }
        let session = open_session(&options.session)?;
        let zid = session.zid().to_string();
        let masks = match &options.key {
            Some(key) => Some(MaskOutput::declare(&session, key, package, &zid)?),
            None => None,
        };
        let ros = match &options.ros2 {
            Some(ros2) => Some(RosOutput::declare(&session, &zid, ros2, package)?),
            None => None,
        };
        let colors: Vec<[u8; 3]> = package.manifest.classes.iter().map(|c| c.color).collect();
        let thread = std::thread::Builder::new()
            .name("gss-zenoh".into())
            .spawn(move || {
                let mut stats = SinkStats::default();
                let (mut masks, mut ros) = (masks, ros);
                for frame in frames.iter() {
                    let ok = masks.as_mut().is_none_or(|m| m.publish(&frame))
                        & ros.as_mut().is_none_or(|r| r.publish(&frame, &colors));
                    if ok {
                        stats.published += 1
                    } else {
                        stats.failed += 1
                    }
                }
                drop((masks, ros));
                if let Err(e) = session.close().wait() {
                    log::warn!("zenoh: closing the session: {e}");
                }
                stats
            })
            .map_err(|e| zenoh_error("starting the publisher thread", e))?;
        Ok(ZenohSink { thread, zid })
    }

    /// The session's zenoh id (lowercase hex, as in ROS 2 liveliness tokens).
    pub fn zid(&self) -> &str {
        &self.zid
    }

    /// Waits until the pipeline has stopped and every frame was handed over.
    pub fn join(self) -> Result<SinkStats> {
        self.thread.join().map_err(|_| Error::StagePanicked {
            stage: "zenoh sink".into(),
            msg: "the publisher thread panicked".into(),
        })
    }
}

/// `gss-mask/1` frames on `key`, the meta on `key/meta`.
struct MaskOutput {
    publisher: zenoh::pubsub::Publisher<'static>,
    _meta: zenoh::query::Queryable<()>,
    payload: Recycled,
    attachment: Recycled,
    json: String,
    /// This session's zenoh id, in every frame's attachment.
    zid: String,
}

impl MaskOutput {
    fn declare(
        session: &zenoh::Session,
        key: &str,
        package: &ModelPackage,
        zid: &str,
    ) -> Result<Self> {
        let publisher = session
            .declare_publisher(key.to_string())
            .congestion_control(CongestionControl::Drop)
            .wait()
            .map_err(|e| zenoh_error(format!("declaring the publisher on {key:?}"), e))?;
        let meta_key = wire::meta_key(key);
        let meta = ZBytes::from(wire::stream_meta(package, key).to_string());
        // Subscribers that are there now get the meta as a sample; later ones ask the queryable.
        session
            .put(meta_key.clone(), meta.clone())
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(|e| zenoh_error(format!("publishing {meta_key:?}"), e))?;
        let reply_key = meta_key.clone();
        let queryable = session
            .declare_queryable(meta_key.clone())
            .complete(true)
            .callback(move |query| {
                if let Err(e) = query.reply(reply_key.clone(), meta.clone()).wait() {
                    log::warn!("zenoh: answering a query on {reply_key:?}: {e}");
                }
            })
            .wait()
            .map_err(|e| zenoh_error(format!("declaring the queryable on {meta_key:?}"), e))?;
        Ok(MaskOutput {
            publisher,
            _meta: queryable,
            payload: Recycled::new(),
            attachment: Recycled::new(),
            json: String::new(),
            zid: zid.to_string(),
        })
    }

    fn publish(&mut self, frame: &MaskFrame) -> bool {
        let classes = &frame.classes;
        let payload = self.payload.fill(|buf| {
            buf.reserve(wire::HEADER_LEN + classes.as_raw().len());
            wire::write_header(
                buf,
                classes.width(),
                classes.height(),
                frame.seq,
                frame.source_index,
            );
            buf.extend_from_slice(classes.as_raw());
        });
        wire::frame_metadata(
            &mut self.json,
            frame,
            wire::capture_unix_ns(frame),
            &self.zid,
        );
        let json = &self.json;
        let attachment = self
            .attachment
            .fill(|buf| buf.extend_from_slice(json.as_bytes()));
        match self.publisher.put(payload).attachment(attachment).wait() {
            Ok(()) => true,
            Err(e) => {
                log::warn!("zenoh: frame {}: {e}", frame.seq);
                false
            }
        }
    }
}

/// One ROS 2 image topic: data publisher, its GID and its liveliness token.
struct RosTopic {
    publisher: zenoh::pubsub::Publisher<'static>,
    _token: zenoh::liveliness::LivelinessToken,
    gid: [u8; 16],
    payload: Recycled,
    attachment: Recycled,
}

impl RosTopic {
    fn declare(
        session: &zenoh::Session,
        node: &NodeId,
        entity_id: u64,
        topic: &str,
    ) -> Result<Self> {
        let key = ros2::topic_keyexpr(
            node.domain_id,
            topic,
            ros2::IMAGE_TYPE_NAME,
            ros2::IMAGE_TYPE_HASH,
        );
        let token_key = node.publisher_token(
            entity_id,
            topic,
            ros2::IMAGE_TYPE_NAME,
            ros2::IMAGE_TYPE_HASH,
            Qos::SENSOR_DATA,
        );
        let publisher = session
            .declare_publisher(key.clone())
            .congestion_control(CongestionControl::Drop)
            .wait()
            .map_err(|e| zenoh_error(format!("declaring the ROS 2 publisher on {key:?}"), e))?;
        let token = session
            .liveliness()
            .declare_token(token_key.clone())
            .wait()
            .map_err(|e| zenoh_error(format!("declaring the liveliness token {token_key:?}"), e))?;
        Ok(RosTopic {
            publisher,
            _token: token,
            gid: ros2::gid_for(&token_key),
            payload: Recycled::new(),
            attachment: Recycled::new(),
        })
    }

    fn publish(&mut self, image: &ros2::Image, sequence_number: i64) -> bool {
        let payload = self.payload.fill(|buf| ros2::encode_image(buf, image));
        let stamp = i64::try_from(image.stamp_unix_ns).unwrap_or(i64::MAX);
        let gid = self.gid;
        let attachment = self
            .attachment
            .fill(|buf| ros2::write_attachment(buf, sequence_number, stamp, &gid));
        match self.publisher.put(payload).attachment(attachment).wait() {
            Ok(()) => true,
            Err(e) => {
                log::warn!("zenoh: ROS 2 message {sequence_number}: {e}");
                false
            }
        }
    }
}

/// The class map as `mono8` on the topic and, if asked, the overlay as `rgb8` on
/// `<topic>/overlay`, from one ROS 2 node.
struct RosOutput {
    options: Ros2Options,
    classes: RosTopic,
    overlay: Option<(RosTopic, String, RgbImage)>,
    _node: zenoh::liveliness::LivelinessToken,
    /// rmw_zenoh numbers each publisher's messages from 1.
    sequence_number: i64,
    warned_no_frame: bool,
}

impl RosOutput {
    fn declare(
        session: &zenoh::Session,
        zid: &str,
        options: &Ros2Options,
        _package: &ModelPackage,
    ) -> Result<Self> {
        ros2::validate_topic(&options.topic).map_err(|msg| Error::InvalidOption {
            option: "--ros2",
            msg: format!("{}: {msg}", options.topic),
        })?;
        let node = NodeId {
            domain_id: options.domain_id,
            session_id: zid,
            node_id: 0,
            namespace: "/",
            name: &options.node_name,
        };
        let node_token = session
            .liveliness()
            .declare_token(node.node_token())
            .wait()
            .map_err(|e| {
                zenoh_error(
                    format!(
                        "declaring the node's liveliness token {:?}",
                        node.node_token()
                    ),
                    e,
                )
            })?;
        let classes = RosTopic::declare(session, &node, 1, &options.topic)?;
        let overlay = if options.overlay {
            let topic = format!("{}/overlay", options.topic);
            Some((
                RosTopic::declare(session, &node, 2, &topic)?,
                topic,
                RgbImage::new(0, 0),
            ))
        } else {
            None
        };
        Ok(RosOutput {
            options: options.clone(),
            classes,
            overlay,
            _node: node_token,
            sequence_number: 0,
            warned_no_frame: false,
        })
    }

    fn publish(&mut self, frame: &MaskFrame, colors: &[[u8; 3]]) -> bool {
        self.sequence_number += 1;
        let stamp_unix_ns = wire::capture_unix_ns(frame);
        let classes = &frame.classes;
        let image = ros2::Image {
            stamp_unix_ns,
            frame_id: &self.options.frame_id,
            height: classes.height(),
            width: classes.width(),
            encoding: "mono8",
            step: classes.width(),
            data: classes.as_raw(),
        };
        let mut ok = self.classes.publish(&image, self.sequence_number);
        if let Some((topic, name, overlay)) = &mut self.overlay {
            match &frame.frame {
                Some(rgb) => {
                    crate::sink::blend_into(rgb, classes, colors, overlay);
                    let image = ros2::Image {
                        encoding: "rgb8",
                        step: overlay.width() * 3,
                        data: overlay.as_raw(),
                        ..image
                    };
                    ok &= topic.publish(&image, self.sequence_number);
                }
                None if !self.warned_no_frame => {
                    log::warn!("{name}: the pipeline keeps no frames (PipelineOptions::keep_frames), so no overlay is published");
                    self.warned_no_frame = true;
                }
                None => {}
            }
        }
        ok
    }
}
