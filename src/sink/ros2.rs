//! ROS 2 without a ROS install: `sensor_msgs/msg/Image` in CDR, and the key expressions,
//! attachment and liveliness tokens under which rmw_zenoh_cpp (the ROS 2 Zenoh middleware)
//! exchanges it, so that a ROS 2 node using rmw_zenoh receives gss's class maps as a topic.
//!
//! The names follow rmw_zenoh's `docs/design.md` as of its Jazzy/Kilted/Rolling releases
//! (rmw_zenoh_cpp 0.2 and later, zenoh 1.x): data on `<domain_id>/<topic>/<type_name>/<type_hash>`,
//! an attachment of sequence number, source timestamp and publisher GID with every sample, and a
//! liveliness token per node and per publisher under the hermetic `@ros2_lv` prefix.
//! Nothing here needs the `zenoh` feature: it builds bytes and strings only.

use sha2::{Digest, Sha256};

/// The DDS name of `sensor_msgs/msg/Image`, as rmw_zenoh puts it in keys.
pub const IMAGE_TYPE_NAME: &str = "sensor_msgs::msg::dds_::Image_";

/// REP-2011 type hash of `sensor_msgs/msg/Image` (unchanged since Iron; `type_hash_of_image`
/// recomputes it from the type description in a test).
pub const IMAGE_TYPE_HASH: &str =
    "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47";

/// Bytes before the CDR body: little-endian plain CDR (`CDR_LE`), no options.
pub const CDR_LE_HEADER: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

/// Publisher QoS as rmw_zenoh writes it into liveliness tokens: only what differs from
/// `rmw_qos_profile_default` (reliable, volatile, keep last 10, no deadline/lifespan, automatic
/// liveliness) appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos {
    /// RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT (2) instead of RELIABLE (1).
    pub best_effort: bool,
    /// KEEP_LAST depth.
    pub depth: usize,
}

impl Qos {
    /// The sensor-data profile (best effort, keep last 5): what a camera topic uses, and what a
    /// subscriber of either reliability accepts.
    pub const SENSOR_DATA: Qos = Qos {
        best_effort: true,
        depth: 5,
    };

    /// `<reliability>:<durability>:<history>,<depth>:<deadline s>,<ns>:<lifespan s>,<ns>:<liveliness>,<s>,<ns>`
    /// with the defaults left empty.
    pub fn to_keyexpr(&self) -> String {
        let reliability = if self.best_effort { "2" } else { "" };
        let depth = if self.depth == 10 {
            String::new()
        } else {
            self.depth.to_string()
        };
        format!("{reliability}::,{depth}:,:,:,,")
    }
}

/// A ROS name with `/` replaced by `%` (liveliness tokens keep one chunk per field).
pub fn mangle(name: &str) -> String {
    name.replace('/', "%")
}

/// Checks a fully qualified topic name (`/gss/classes`): a leading `/`, then `/`-separated tokens
/// of letters, digits and `_` that do not start with a digit. Returns why not.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    let rest = topic
        .strip_prefix('/')
        .ok_or("a ROS 2 topic must be fully qualified: it starts with '/' (e.g. /gss/classes)")?;
    if rest.is_empty() {
        return Err("the topic has no name after '/'".into());
    }
    for token in rest.split('/') {
        if token.is_empty() {
            return Err("empty token (a '//' or a trailing '/')".into());
        }
        if !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "{token:?}: only letters, digits and '_' may appear between slashes"
            ));
        }
        if token.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("{token:?}: a token may not start with a digit"));
        }
    }
    Ok(())
}

/// Key expression of a topic's data: `<domain_id>/<topic without leading '/'>/<type>/<hash>`.
pub fn topic_keyexpr(domain_id: u32, topic: &str, type_name: &str, type_hash: &str) -> String {
    format!(
        "{domain_id}/{}/{type_name}/{type_hash}",
        topic.trim_start_matches('/')
    )
}

/// Identity of one node of a zenoh session in liveliness tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeId<'a> {
    pub domain_id: u32,
    /// The zenoh session id as zenoh prints it (lowercase hex).
    pub session_id: &'a str,
    /// Node number within the session (rmw_zenoh counts from 0).
    pub node_id: u64,
    /// Namespace (`/` for none) and name of the node.
    pub namespace: &'a str,
    pub name: &'a str,
}

impl NodeId<'_> {
    fn mangled_namespace(&self) -> String {
        if self.namespace.is_empty() || self.namespace == "/" {
            "%".into()
        } else {
            mangle(self.namespace)
        }
    }

    /// `@ros2_lv/<domain>/<session>/<node>/<node>/NN/<enclave>/<namespace>/<name>` (no SROS
    /// enclave: `%`).
    pub fn node_token(&self) -> String {
        format!(
            "@ros2_lv/{}/{}/{}/{}/NN/%/{}/{}",
            self.domain_id,
            self.session_id,
            self.node_id,
            self.node_id,
            self.mangled_namespace(),
            self.name
        )
    }

    /// The token of a message publisher (`MP`) of this node.
    pub fn publisher_token(
        &self,
        entity_id: u64,
        topic: &str,
        type_name: &str,
        type_hash: &str,
        qos: Qos,
    ) -> String {
        format!(
            "@ros2_lv/{}/{}/{}/{entity_id}/MP/%/{}/{}/{}/{type_name}/{type_hash}/{}",
            self.domain_id,
            self.session_id,
            self.node_id,
            self.mangled_namespace(),
            self.name,
            mangle(topic),
            qos.to_keyexpr()
        )
    }
}

/// A publisher GID: 16 bytes unique to the entity (here: from its liveliness token, which names
/// the session and the entity).
pub fn gid_for(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    std::array::from_fn(|i| digest[i])
}

/// Length of [`write_attachment`]'s output.
pub const ATTACHMENT_LEN: usize = 8 + 8 + 1 + 16;

/// The attachment rmw_zenoh reads with every sample (written into `out`, cleared first):
/// sequence number (i64 LE), source timestamp (ns since the Unix epoch, i64 LE), GID length (1
/// byte, 16), GID.
pub fn write_attachment(
    out: &mut Vec<u8>,
    sequence_number: i64,
    source_timestamp_ns: i64,
    gid: &[u8; 16],
) {
    out.clear();
    out.extend_from_slice(&sequence_number.to_le_bytes());
    out.extend_from_slice(&source_timestamp_ns.to_le_bytes());
    out.push(16);
    out.extend_from_slice(gid);
}

/// A `sensor_msgs/msg/Image` to encode: the pixel rows are `data`, `step` bytes each.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub stamp_unix_ns: u64,
    pub frame_id: &'a str,
    pub height: u32,
    pub width: u32,
    /// `mono8`, `rgb8`, ...
    pub encoding: &'a str,
    pub step: u32,
    pub data: &'a [u8],
}

/// CDR writer: alignment counts from the end of the encapsulation header.
struct Cdr<'a> {
    out: &'a mut Vec<u8>,
    origin: usize,
}

impl Cdr<'_> {
    fn align(&mut self, n: usize) {
        let pos = self.out.len() - self.origin;
        let pad = (n - pos % n) % n;
        self.out.resize(self.out.len() + pad, 0);
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.align(4);
        self.out.extend_from_slice(&v.to_le_bytes());
    }
    /// Length counts the terminating NUL, as CDR strings do.
    fn string(&mut self, s: &str) {
        self.u32(u32::try_from(s.len() + 1).unwrap_or(u32::MAX));
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(0);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.out.extend_from_slice(b);
    }
}

/// Bytes [`encode_image`] writes for `image`.
pub fn encoded_len(image: &Image) -> usize {
    let align4 = |n: usize| n.div_ceil(4) * 4;
    let mut n = 8 + 4 + image.frame_id.len() + 1; // stamp, frame_id
    n = align4(n) + 8 + 4 + image.encoding.len() + 1 + 1; // height, width, encoding, is_bigendian
    4 + align4(n) + 4 + 4 + image.data.len() // encapsulation header, step, data
}

/// Appends `image` as CDR_LE with its encapsulation header to `out` (cleared first).
pub fn encode_image(out: &mut Vec<u8>, image: &Image) {
    out.clear();
    out.reserve(encoded_len(image));
    out.extend_from_slice(&CDR_LE_HEADER);
    let origin = out.len();
    let mut w = Cdr { out, origin };
    // builtin_interfaces/Time: seconds as int32 (wraps in 2038, as ROS 2 defines it).
    w.i32((image.stamp_unix_ns / 1_000_000_000) as i32);
    w.u32((image.stamp_unix_ns % 1_000_000_000) as u32);
    w.string(image.frame_id);
    w.u32(image.height);
    w.u32(image.width);
    w.string(image.encoding);
    w.out.push(0); // is_bigendian: no
    w.u32(image.step);
    w.bytes(image.data);
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRING_HASH: &str =
        "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18";
    const ADD_TWO_INTS_HASH: &str =
        "RIHS01_e118de6bf5eeb66a2491b5bda11202e7b68f198d6f67922cf30364858239c81a";

    /// REP-2011: sha256 of the type description as JSON with `, `/`: ` separators, fields as
    /// name + type (id, capacity, string capacity, nested type name), referenced types sorted.
    /// A field: name, type id, nested type name.
    type Field<'a> = (&'a str, u8, &'a str);

    fn rihs01(types: &[(&str, &[Field])]) -> String {
        let describe = |(name, fields): &(&str, &[Field])| {
            let fields: Vec<String> = fields
                .iter()
                .map(|(f, id, nested)| format!("{{\"name\": \"{f}\", \"type\": {{\"type_id\": {id}, \"capacity\": 0, \"string_capacity\": 0, \"nested_type_name\": \"{nested}\"}}}}"))
                .collect();
            format!(
                "{{\"type_name\": \"{name}\", \"fields\": [{}]}}",
                fields.join(", ")
            )
        };
        let refs: Vec<String> = types[1..].iter().map(describe).collect();
        let json = format!(
            "{{\"type_description\": {}, \"referenced_type_descriptions\": [{}]}}",
            describe(&types[0]),
            refs.join(", ")
        );
        let digest = Sha256::digest(json.as_bytes());
        format!(
            "RIHS01_{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    #[test]
    fn type_hash_of_image() {
        // The method checks out against rmw_zenoh's documented std_msgs/msg/String hash first.
        assert_eq!(
            rihs01(&[("std_msgs/msg/String", &[("data", 17, "")])]),
            STRING_HASH
        );
        let image: &[(&str, u8, &str)] = &[
            ("header", 1, "std_msgs/msg/Header"),
            ("height", 7, ""),
            ("width", 7, ""),
            ("encoding", 17, ""),
            ("is_bigendian", 3, ""),
            ("step", 7, ""),
            ("data", 147, ""),
        ];
        let time: &[(&str, u8, &str)] = &[("sec", 6, ""), ("nanosec", 7, "")];
        let header: &[(&str, u8, &str)] = &[
            ("stamp", 1, "builtin_interfaces/msg/Time"),
            ("frame_id", 17, ""),
        ];
        let hash = rihs01(&[
            ("sensor_msgs/msg/Image", image),
            ("builtin_interfaces/msg/Time", time),
            ("std_msgs/msg/Header", header),
        ]);
        assert_eq!(hash, IMAGE_TYPE_HASH);
    }

    // The examples of rmw_zenoh's docs/design.md, rebuilt.
    #[test]
    fn keys_match_rmw_zenoh_design_examples() {
        assert_eq!(
            topic_keyexpr(0, "/chatter", "std_msgs::msg::dds_::String_", STRING_HASH),
            format!("0/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}")
        );
        assert_eq!(
            topic_keyexpr(
                0,
                "/robot1/chatter",
                "std_msgs::msg::dds_::String_",
                STRING_HASH
            ),
            format!("0/robot1/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}")
        );
        assert_eq!(
            topic_keyexpr(
                2,
                "/add_two_ints",
                "example_interfaces::srv::dds_::AddTwoInts_",
                ADD_TWO_INTS_HASH
            ),
            format!(
                "2/add_two_ints/example_interfaces::srv::dds_::AddTwoInts_/{ADD_TWO_INTS_HASH}"
            )
        );

        let listener = NodeId {
            domain_id: 2,
            session_id: "aac3178e146ba6f1fc6e6a4085e77f21",
            node_id: 0,
            namespace: "/",
            name: "listener",
        };
        assert_eq!(
            listener.node_token(),
            "@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/0/NN/%/%/listener"
        );
        let talker = NodeId {
            domain_id: 2,
            session_id: "8b20917502ee955ac4476e0266340d5c",
            node_id: 0,
            namespace: "",
            name: "talker",
        };
        let reliable_depth_7 = Qos {
            best_effort: false,
            depth: 7,
        };
        assert_eq!(
            talker.publisher_token(10, "/chatter", "std_msgs::msg::dds_::String_", STRING_HASH, reliable_depth_7),
            format!("@ros2_lv/2/8b20917502ee955ac4476e0266340d5c/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/{STRING_HASH}/::,7:,:,:,,")
        );
        assert_eq!(
            Qos {
                best_effort: false,
                depth: 10
            }
            .to_keyexpr(),
            "::,:,:,:,,"
        );
        assert_eq!(Qos::SENSOR_DATA.to_keyexpr(), "2::,5:,:,:,,");
        assert_eq!(mangle("/gss/classes"), "%gss%classes");
    }

    #[test]
    fn attachment_layout() {
        let gid: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
        let mut out = vec![9; 3];
        write_attachment(&mut out, 5, 1_700_000_000_123_456_789, &gid);
        assert_eq!(out.len(), ATTACHMENT_LEN);
        assert_eq!(&out[..8], &5i64.to_le_bytes());
        assert_eq!(&out[8..16], &1_700_000_000_123_456_789i64.to_le_bytes());
        assert_eq!(out[16], 16);
        assert_eq!(&out[17..], &gid);
        assert_ne!(gid_for("a"), gid_for("b"));
    }

    #[test]
    fn topics_are_checked() {
        assert!(validate_topic("/gss/classes").is_ok());
        for bad in ["gss", "/", "/a//b", "/a/", "/a-b", "/1a"] {
            assert!(validate_topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_layout_is_aligned_cdr() {
        let data = [1u8, 2, 3, 4, 5, 6];
        let image = Image {
            stamp_unix_ns: 3_000_000_007,
            frame_id: "cam",
            height: 2,
            width: 3,
            encoding: "mono8",
            step: 3,
            data: &data,
        };
        let mut out = Vec::new();
        encode_image(&mut out, &image);
        assert_eq!(out.len(), encoded_len(&image));
        let mut expected = vec![0, 1, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0];
        expected.extend_from_slice(&[4, 0, 0, 0, b'c', b'a', b'm', 0]);
        expected.extend_from_slice(&[2, 0, 0, 0, 3, 0, 0, 0]);
        expected.extend_from_slice(&[6, 0, 0, 0, b'm', b'o', b'n', b'o', b'8', 0]);
        expected.extend_from_slice(&[0, 0]); // is_bigendian, then 1 byte to align step
        expected.extend_from_slice(&[3, 0, 0, 0, 6, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(out, expected);
    }
}
