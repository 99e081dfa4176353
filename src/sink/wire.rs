//! The `gss-mask/1` wire format that `gss stream --zenoh KEY` publishes (the README's "Masks over
//! zenoh" section documents it for subscribers in other languages), and the options shared by the
//! zenoh sink in builds with and without the `zenoh` feature.
//!
//! One sample per [`MaskFrame`] on `KEY`:
//! - payload: a 32-byte little-endian header, then `width × height` class ids (u8, row-major);
//! - attachment: the frame's metadata as one JSON object ([`frame_metadata`]).
//!
//! The classes, palette, grid and model name go once to `KEY/meta` as JSON ([`stream_meta`]),
//! which a queryable keeps answering for subscribers that join later.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::ModelPackage;
use crate::pipeline::MaskFrame;

/// First bytes of every frame payload.
pub const MAGIC: [u8; 4] = *b"GSSM";
/// Bumped when the header's layout changes.
pub const VERSION: u8 = 1;
/// Pixel format code 0: one u8 class id per pixel (255: no class).
pub const FORMAT_CLASS_IDS: u8 = 0;
pub const HEADER_LEN: usize = 32;

/// How the zenoh session finds its peers. Defaults: peer mode, no endpoints, multicast
/// scouting off (two processes meet through `connect`/`listen` locators, or a router).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// A zenoh JSON5 configuration file, applied before the options below.
    pub config_file: Option<PathBuf>,
    /// Locators to connect to, e.g. `tcp/127.0.0.1:7447` (a router, or a listening peer).
    pub connect: Vec<String>,
    /// Locators to listen on, e.g. `tcp/127.0.0.1:7447` (`:0`: a port the OS picks).
    pub listen: Vec<String>,
    /// `client` instead of `peer`: everything goes through the router given in `connect`.
    pub client: bool,
}

/// A ROS 2 topic to publish `sensor_msgs/msg/Image` on, the rmw_zenoh way ([`super::ros2`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ros2Options {
    /// Fully qualified topic name, e.g. `/gss/classes`.
    pub topic: String,
    /// `ROS_DOMAIN_ID` of the graph to join.
    pub domain_id: u32,
    /// `header.frame_id` of every image.
    pub frame_id: String,
    /// Node name the publisher's liveliness tokens announce.
    pub node_name: String,
    /// Also publish the frame blended with the class colours (rgb8) on `<topic>/overlay`;
    /// needs `PipelineOptions::keep_frames`.
    pub overlay: bool,
}

/// What the zenoh sink publishes and where.
#[derive(Debug, Clone, Default)]
pub struct ZenohSinkOptions {
    pub session: SessionOptions,
    /// Key of the `gss-mask/1` frames; `None`: no mask frames (ROS 2 only).
    pub key: Option<String>,
    pub ros2: Option<Ros2Options>,
}

/// Writes the 32-byte header of a frame payload into `out` (appended).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0 | 4 | magic `GSSM` |
/// | 4 | 1 | version (1) |
/// | 5 | 1 | pixel format (0: u8 class ids) |
/// | 6 | 2 | reserved (0) |
/// | 8 | 4 | width (u32) |
/// | 12 | 4 | height (u32) |
/// | 16 | 8 | seq (u64) |
/// | 24 | 8 | source index (u64) |
pub fn write_header(out: &mut Vec<u8>, width: u32, height: u32, seq: u64, source_index: u64) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, FORMAT_CLASS_IDS, 0, 0]);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&source_index.to_le_bytes());
}

/// A decoded frame header; the class ids follow it in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub seq: u64,
    pub source_index: u64,
}

/// Reads a frame payload back: its header and its class ids. `None` for anything that is not a
/// whole `gss-mask/1` frame (wrong magic or version, or pixels missing).
pub fn parse_frame(payload: &[u8]) -> Option<(Header, &[u8])> {
    let (head, pixels) = payload.split_at_checked(HEADER_LEN)?;
    if head[..4] != MAGIC || head[4] != VERSION || head[5] != FORMAT_CLASS_IDS {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let u64_at = |i: usize| u64::from_le_bytes(std::array::from_fn(|k| head[i + k]));
    let header = Header {
        width: u32_at(8),
        height: u32_at(12),
        seq: u64_at(16),
        source_index: u64_at(24),
    };
    let len = (header.width as usize).checked_mul(header.height as usize)?;
    (pixels.len() == len).then_some((header, pixels))
}

/// Nanoseconds since the Unix epoch at which `frame` was captured (its `Instant` placed on the
/// wall clock by how long ago it was).
pub fn capture_unix_ns(frame: &MaskFrame) -> u64 {
    let age = frame.captured_at.elapsed();
    let at = SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH);
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The attachment of a frame sample: one JSON object (written into `out`, cleared first), e.g.
/// `{"seq":3,"source_index":3,"width":64,"height":48,"capture_unix_ns":…,"latency_ms":…,
/// "timings_ms":{"preprocess":…,"prior":…,"decoder":…,"inverse":…,"resize":…},
/// "decoded_share":1,"dropped_so_far":0,"zid":"…"}`. `zid` is the publishing session's zenoh
/// id: a subscriber takes `KEY/meta` only from the replier with that id, not from any peer that
/// answers first.
pub fn frame_metadata(out: &mut String, frame: &MaskFrame, capture_unix_ns: u64, zid: &str) {
    out.clear();
    let t = &frame.timings;
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        concat!(
            "{{\"seq\":{},\"source_index\":{},\"width\":{},\"height\":{},\"capture_unix_ns\":{},",
            "\"latency_ms\":{:.3},\"timings_ms\":{{\"preprocess\":{:.3},\"prior\":{:.3},\"decoder\":{:.3},",
            "\"inverse\":{:.3},\"resize\":{:.3}}},\"decoded_share\":{},\"dropped_so_far\":{},\"zid\":{:?}}}"
        ),
        frame.seq,
        frame.source_index,
        frame.classes.width(),
        frame.classes.height(),
        capture_unix_ns,
        ms(frame.latency),
        ms(t.preprocess),
        ms(t.prior),
        ms(t.decoder),
        ms(t.inverse),
        ms(t.resize),
        if frame.decoded_share.is_finite() { frame.decoded_share } else { 0.0 },
        frame.dropped_so_far,
        zid,
    );
}

/// `KEY/meta`: what a subscriber needs to read the class ids.
pub fn stream_meta(package: &ModelPackage, key: &str) -> serde_json::Value {
    let m = &package.manifest;
    serde_json::json!({
        "format": "gss-mask/1",
        "frames": key,
        "model": m.name,
        "grid": m.prior.grid,
        "unlabeled": crate::frame_path::UNSEEN,
        "classes": m.classes.iter().map(|c| serde_json::json!({"id": c.id, "name": c.name, "color": c.color})).collect::<Vec<_>>(),
    })
}

/// The key of the meta sample for frames published on `key`.
pub fn meta_key(key: &str) -> String {
    format!("{key}/meta")
}

/// What the sink did, when it has stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Frames handed to zenoh (each on every output asked for).
    pub published: u64,
    /// Frames of which zenoh refused a put (logged; the stream went on). Frames the sink's
    /// queue lost while publishing fell behind are the pipeline's count: its
    /// `Stats::subscribers` entry for this sink.
    pub failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_partial_frames() {
        let mut buf = Vec::new();
        write_header(&mut buf, 3, 2, 7, 9);
        assert_eq!(buf.len(), HEADER_LEN);
        assert_eq!(&buf[..8], b"GSSM\x01\x00\x00\x00");
        buf.extend_from_slice(&[0, 1, 2, 3, 4, 5]);
        let (h, px) = parse_frame(&buf).unwrap();
        assert_eq!(
            h,
            Header {
                width: 3,
                height: 2,
                seq: 7,
                source_index: 9
            }
        );
        assert_eq!(px, &[0, 1, 2, 3, 4, 5]);
        assert!(parse_frame(&buf[..buf.len() - 1]).is_none());
        assert!(parse_frame(&buf[..10]).is_none());
        buf[0] = b'X';
        assert!(parse_frame(&buf).is_none());
    }
}
